with {}; "abc
