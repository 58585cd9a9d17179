with {}; ../x
