let x = "world"; n = 42; p = ./lib; in [ "hello ${x}" "${x}${x}" "n=${toString n}" "nested ${"inner ${x}"}" "${"a" + "b"}c" ]
