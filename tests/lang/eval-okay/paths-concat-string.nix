[ (builtins.typeOf (./a + "b")) (baseNameOf (./x + "/y/../z")) (./. == ./.) (./a == ./b) (builtins.typeOf (./a + "/b" + "/c")) ]
