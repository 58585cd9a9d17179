{ ${null} = 1; a = 2; ${if true then null else "b"} = 3; }
