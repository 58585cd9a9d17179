with {}; "a\nb\t\r\"\\${x}"
