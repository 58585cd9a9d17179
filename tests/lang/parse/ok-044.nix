with {}; let inherit a; inherit (b) c; in c
