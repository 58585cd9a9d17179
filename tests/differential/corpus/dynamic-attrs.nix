let n = "dyn"; in { ${n} = 1; "${n}2" = 2; ${null} = 3; a.${n} = 4; a."${n}x".y = 5; }
