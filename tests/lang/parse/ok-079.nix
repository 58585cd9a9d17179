with {}; ''
  a ${x} 
    b ${y}
''
