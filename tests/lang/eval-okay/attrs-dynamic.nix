let k = "foo"; in { ${k} = 1; "${k}bar" = 2; "quoted key" = 3; ${"x" + "y"}.z = 4; }
