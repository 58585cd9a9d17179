# Fixed-output derivations: flat and recursive, sha1/sha256/sha512, every hash encoding.
let
  mk = attrs: derivation ({ system = "x86_64-linux"; builder = "/bin/sh"; } // attrs);
  fo = name: mode: algo: hash: mk { inherit name; outputHashMode = mode; outputHashAlgo = algo; outputHash = hash; };
in {
  sha256Base16Flat = fo "f256-16" "flat" "sha256" "509b659e2e24bddc929d13d4f1afb16e89b6654697600a4de1796ad50b56673f";
  sha256Base32Flat = fo "f256-32" "flat" "sha256" "0gv7aq5xaskrw56hlq4p8rjvd2bfn6pz3m0kkn9drg945sg6b6sh";
  sha256Base64Flat = fo "f256-64" "flat" "sha256" "UJtlni4kvdySnRPU8a+xbom2ZUaXYApN4Xlq1QtWZz8=";
  sha256SriFlat = fo "f256-sri" "flat" "sha256" "sha256-UJtlni4kvdySnRPU8a+xbom2ZUaXYApN4Xlq1QtWZz8=";
  sha256Base16Rec = fo "r256-16" "recursive" "sha256" "509b659e2e24bddc929d13d4f1afb16e89b6654697600a4de1796ad50b56673f";
  sha256Base32Rec = fo "r256-32" "recursive" "sha256" "0gv7aq5xaskrw56hlq4p8rjvd2bfn6pz3m0kkn9drg945sg6b6sh";
  sha256SriRec = fo "r256-sri" "recursive" "sha256" "sha256-UJtlni4kvdySnRPU8a+xbom2ZUaXYApN4Xlq1QtWZz8=";
  sha1Base16Flat = fo "f1-16" "flat" "sha1" "0b4ac09d8e5c52a4c8fe0df9fd853abf7d722382";
  sha1Base32Flat = fo "f1-32" "flat" "sha1" "h8ip4zdz7a2zvy8dzv4a8ljwisfw0jhb";
  sha1Base64Rec = fo "r1-64" "recursive" "sha1" "C0rAnY5cUqTI/g35/YU6v31yI4I=";
  sha1SriRec = fo "r1-sri" "recursive" "sha1" "sha1-C0rAnY5cUqTI/g35/YU6v31yI4I=";
  sha512Base16Flat = fo "f512-16" "flat" "sha512" "3208df837cf576ac7292ce78a69b298dbdd0ddad2fcf0badbb975e1a9304e149d55bc49d9de6609b2c0c246e4eeb802fae4b1f2cb40231b7a71d627fe21eb7c6";
  sha512Base32Rec = fo "r512-32" "recursive" "sha512" "33bf7p2gxi1v9xp641b8b0z9fp2z07b9rp2831ckdhfd7cxqidxajg10j9ilplppfnhpkrgmpfx1gcd56dscy6fj9raqxpmgj1xy21j";
  sha512Base64Flat = fo "f512-64" "flat" "sha512" "Mgjfg3z1dqxyks54ppspjb3Q3a0vzwutu5deGpME4UnVW8SdneZgmywMJG5O64AvrksfLLQCMbenHWJ/4h63xg==";
  sha512SriRec = fo "r512-sri" "recursive" "sha512" "sha512-Mgjfg3z1dqxyks54ppspjb3Q3a0vzwutu5deGpME4UnVW8SdneZgmywMJG5O64AvrksfLLQCMbenHWJ/4h63xg==";
  sriNoAlgo = mk { name = "sri-no-algo"; outputHash = "sha256-UJtlni4kvdySnRPU8a+xbom2ZUaXYApN4Xlq1QtWZz8="; };
  sriNoAlgoRec = mk { name = "sri-no-algo-rec"; outputHashMode = "recursive"; outputHash = "sha512-Mgjfg3z1dqxyks54ppspjb3Q3a0vzwutu5deGpME4UnVW8SdneZgmywMJG5O64AvrksfLLQCMbenHWJ/4h63xg=="; };
  noMode = mk { name = "no-mode"; outputHashAlgo = "sha256"; outputHash = "0gv7aq5xaskrw56hlq4p8rjvd2bfn6pz3m0kkn9drg945sg6b6sh"; };
  # Two fixed-output derivations with the same output but different builders: one outPath.
  sameOutA = mk { name = "same-out"; outputHashAlgo = "sha256"; outputHash = "0gv7aq5xaskrw56hlq4p8rjvd2bfn6pz3m0kkn9drg945sg6b6sh"; args = [ "a" ]; };
  sameOutB = mk { name = "same-out"; outputHashAlgo = "sha256"; outputHash = "0gv7aq5xaskrw56hlq4p8rjvd2bfn6pz3m0kkn9drg945sg6b6sh"; args = [ "b" ]; };
  # A derivation using a fixed-output one: its hash uses the fixed output's, not the .drv's.
  usesFixedA = mk { name = "uses-fixed"; src = (mk { name = "same-out"; outputHashAlgo = "sha256"; outputHash = "0gv7aq5xaskrw56hlq4p8rjvd2bfn6pz3m0kkn9drg945sg6b6sh"; args = [ "a" ]; }); };
  usesFixedB = mk { name = "uses-fixed-b"; src = (mk { name = "same-out"; outputHashAlgo = "sha256"; outputHash = "0gv7aq5xaskrw56hlq4p8rjvd2bfn6pz3m0kkn9drg945sg6b6sh"; args = [ "b" ]; }); };
  fixedOutputsList = mk { name = "fixed-outputs-list"; outputs = [ "out" ]; outputHashAlgo = "sha1"; outputHash = "h8ip4zdz7a2zvy8dzv4a8ljwisfw0jhb"; };
}
