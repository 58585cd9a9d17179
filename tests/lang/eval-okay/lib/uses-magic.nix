# Evaluated with scopedImport: `magic` and `x` come from the scope.
[ magic x (builtins.typeOf magic) ]
