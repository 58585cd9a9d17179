with {}; [ (let inherit (b) zz yy; in zz) { inherit (b) yy; x = 1; inherit (c) aa ww; } (let inherit zz yy; in zz) ((f) 1 ({ }).a "x${y}" /p/${q}) ]
