let s = { outPath = "/some/path"; }; t = { __toString = self: "str:${self.v}"; v = "x"; }; in [ "${s}" "${t}" (toString t) (toString s) ]
