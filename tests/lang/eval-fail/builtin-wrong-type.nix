builtins.length 5
