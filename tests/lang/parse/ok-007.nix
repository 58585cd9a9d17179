with {}; { inherit (e) a "b"; c.d = 1; c.e = 2; ${x} = 1; "${y}" = 2; "q" = 3; ${"r"} = 4; }
