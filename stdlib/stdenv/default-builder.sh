# The builder of every `stdenv.mkDerivation` without a `builder` of its own.
. "$stdenv/setup"
genericBuild
