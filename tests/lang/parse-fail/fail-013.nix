with {}; { inherit "${a}"; }
