rec { xyzzy4 = xyzzy3; xyzzy3 = xyzzy4; }.xyzzy3
