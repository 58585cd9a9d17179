http://x.org/y?z
