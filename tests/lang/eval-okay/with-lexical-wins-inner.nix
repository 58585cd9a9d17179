with { x = 1; }; let x = 2; in with { x = 3; }; x
