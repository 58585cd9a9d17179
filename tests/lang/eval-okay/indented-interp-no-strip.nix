let v = "  spaced"; in ''
  ${v}
    x
''
