with {}; ''
  ${x}
  ''
