let v = "V"; in [
  ''
    a
      b
    ${v}
  ''
  ''''$ ''' ''\n ''\t ''\\ $'' ''  ''
  ''

       first after blank
    less
  ''
  ''no newline''
  ''
  	tab-then-spaces
    spaces
  ''
  ''
    ${"  interpolated indentation is kept"}
      x
  ''
]
