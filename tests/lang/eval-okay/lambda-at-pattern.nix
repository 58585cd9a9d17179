let f = args@{ a, b ? 2, ... }: [ a b (args ? b) (args ? c) ]; g = { a, ... }@args: args; in [ (f { a = 1; }) (f { a = 1; c = 3; }) (g { a = 1; z = 2; }) ]
