# stdenv's setup script: sourced by every `stdenv.mkDerivation` builder (`. $stdenv/setup`),
# then `genericBuild` runs the phases. The stdenv derivation writes this file to
# `$stdenv/setup` after a short preamble that sets `initialPath` (the bootstrap busybox's
# applets) and `SHELL`.
#
# The script runs under the static bash of the bootstrap, and is also kept runnable by busybox's
# ash (no arrays, no `${!name}`): lists are space-separated strings, as Nix passes them.
# Phases and hooks follow nixpkgs' documented behaviour: a phase given as a derivation attribute
# (a string of shell code) replaces the function of the same name; `preX`/`postX` hooks run
# around it; `dontX` skips it; `doCheck`/`doInstallCheck` enable the checks.

# -- small helpers -------------------------------------------------------------------------------

# Print the value of the variable named $1 (empty when unset).
_var() {
    eval "printf '%s' \"\${$1:-}\""
}

# Tell whether a shell function named $1 is defined.
_isFunction() {
    case "$(type "$1" 2>/dev/null)" in
        *function*) return 0 ;;
    esac
    return 1
}

# Run one hook: a function name is called, anything else is evaluated as shell code.
_eval() {
    if _isFunction "$1"; then
        "$@"
    else
        eval "$1"
    fi
}

# Run the hook named $1: the function or variable `$1`, then each entry of `${1}Hooks`
# (function names or code, space-separated, as added by `addHook`).
runHook() {
    local _hookName _hookCode _hook
    _hookName=$1
    shift
    _hookCode=$(_var "$_hookName")
    if [ -n "$_hookCode" ]; then
        eval "$_hookCode"
    elif _isFunction "$_hookName"; then
        "$_hookName" "$@"
    fi
    for _hook in $(_var "${_hookName}Hooks"); do
        _eval "$_hook" "$@"
    done
    return 0
}

# Append a function name to the hook list `${1}Hooks` (e.g. `addHook postInstall fixThings`).
addHook() {
    eval "${1}Hooks=\"\${${1}Hooks:-} $2\""
}

# nixpkgs' `addEnvHooks _offset fn`: call `fn <input>` for every input, now and later.
envHooks=
addEnvHooks() {
    envHooks="$envHooks $2"
    for _input in $_processedInputs; do
        "$2" "$_input"
    done
}

echoCmd() {
    printf '%s:' "$1"
    shift
    for _a in "$@"; do printf ' %s' "$_a"; done
    echo
}

# Strip the store hash from a store path's base name (`/nix/store/abc…-foo.tar` → `foo.tar`).
stripHash() {
    _base=$(basename "$1")
    case "$_base" in
        ????????????????????????????????-*) printf '%s\n' "${_base#*-}" ;;
        *) printf '%s\n' "$_base" ;;
    esac
}

# -- substitution --------------------------------------------------------------------------------

# substitute IN OUT [--replace-fail|--replace-warn|--replace|--replace-quiet OLD NEW]
#                   [--subst-var NAME] [--subst-var-by NAME VALUE]
# Copy IN to OUT, replacing literal strings; `--subst-var NAME` replaces `@NAME@` by $NAME.
substitute() {
    local _in _out _tmp _mode _old _new
    _in=$1
    _out=$2
    shift 2
    if [ ! -f "$_in" ]; then
        echo "substitute(): ERROR: file '$_in' does not exist" >&2
        return 1
    fi
    _tmp="$_out.substitute.$$"
    cp "$_in" "$_tmp"
    while [ $# -gt 0 ]; do
        _mode=$1
        case "$_mode" in
            --replace | --replace-fail | --replace-warn | --replace-quiet)
                _old=$2 _new=$3
                shift 3
                ;;
            --subst-var)
                _old="@$2@" _new=$(_var "$2")
                if ! (eval "[ \"\${$2+set}\" = set ]"); then
                    echo "substitute(): ERROR: variable '\$$2' is unset" >&2
                    rm -f "$_tmp"
                    return 1
                fi
                _mode=--replace-quiet
                shift 2
                ;;
            --subst-var-by)
                _old="@$2@" _new=$3 _mode=--replace-quiet
                shift 3
                ;;
            *)
                echo "substitute(): ERROR: invalid argument '$_mode'" >&2
                rm -f "$_tmp"
                return 1
                ;;
        esac
        if ! grep -qF -- "$_old" "$_tmp"; then
            case "$_mode" in
                --replace-fail)
                    echo "substitute(): ERROR: pattern '$_old' doesn't match anything in file '$_in'" >&2
                    rm -f "$_tmp"
                    return 1
                    ;;
                --replace-warn | --replace)
                    echo "substitute(): WARNING: pattern '$_old' doesn't match anything in file '$_in'" >&2
                    ;;
            esac
            continue
        fi
        _OLD=$_old _NEW=$_new awk '
            BEGIN { old = ENVIRON["_OLD"]; new = ENVIRON["_NEW"]; n = length(old) }
            {
                line = $0; res = ""
                while ((i = index(line, old)) > 0) {
                    res = res substr(line, 1, i - 1) new
                    line = substr(line, i + n)
                }
                print res line
            }' "$_tmp" > "$_tmp.new"
        mv "$_tmp.new" "$_tmp"
    done
    if [ -e "$_in" ] && [ -x "$_in" ]; then chmod +x "$_tmp"; fi
    mv "$_tmp" "$_out"
}

# substituteInPlace FILE... ARGS: `substitute` each file onto itself.
substituteInPlace() {
    _files=
    while [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; do
        _files="$_files $1"
        shift
    done
    for _f in $_files; do
        substitute "$_f" "$_f" "$@"
    done
}

# substituteAll IN OUT: replace every `@name@` whose variable is set in the environment.
substituteAll() {
    awk '
        {
            line = $0; res = ""
            while (match(line, /@[a-zA-Z_][a-zA-Z0-9_]*@/)) {
                name = substr(line, RSTART + 1, RLENGTH - 2)
                if (name in ENVIRON) {
                    res = res substr(line, 1, RSTART - 1) ENVIRON[name]
                    line = substr(line, RSTART + RLENGTH)
                } else {
                    res = res substr(line, 1, RSTART + RLENGTH - 2)
                    line = substr(line, RSTART + RLENGTH - 1)
                }
            }
            print res line
        }' "$1" > "$2"
    if [ -x "$1" ]; then chmod +x "$2"; fi
}

substituteAllInPlace() {
    substituteAll "$1" "$1.tmp.$$"
    mv "$1.tmp.$$" "$1"
}

# -- the environment -----------------------------------------------------------------------------

: "${outputs:=out}"
for _output in $outputs; do
    if [ -z "$(_var "$_output")" ]; then
        echo "error: output '$_output' has no path" >&2
        exit 1
    fi
done
: "${prefix:=$(_var "${outputs%% *}")}"
export prefix
: "${NIX_BUILD_CORES:=1}"
[ "$NIX_BUILD_CORES" -gt 0 ] 2>/dev/null || NIX_BUILD_CORES=1
export NIX_BUILD_CORES
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-315532800}"
export CONFIG_SHELL="${CONFIG_SHELL:-$SHELL}"

_path=
for _p in $initialPath; do
    _path="${_path:+$_path:}$_p/bin"
done
PATH=$_path
export PATH

# Add one input to the environment: its bin/ to PATH, its setup hook sourced, and the inputs it
# propagates (nix-support/propagated-build-inputs) processed too, each input once.
_processedInputs=
_addInput() {
    case " $_processedInputs " in
        *" $1 "*) return 0 ;;
    esac
    _processedInputs="$_processedInputs $1"
    if [ -d "$1/bin" ]; then
        PATH="$1/bin${PATH:+:$PATH}"
        export PATH
    fi
    if [ -f "$1/nix-support/setup-hook" ]; then
        . "$1/nix-support/setup-hook"
    fi
    for _hook in $envHooks; do
        "$_hook" "$1"
    done
    for _file in propagated-build-inputs propagated-native-build-inputs; do
        if [ -f "$1/nix-support/$_file" ]; then
            for _dep in $(cat "$1/nix-support/$_file"); do
                _addInput "$_dep"
            done
        fi
    done
}

# Inputs listed later end up earlier on PATH, so buildInputs win over nativeBuildInputs.
for _input in ${depsBuildBuild:-} ${nativeBuildInputs:-} ${propagatedNativeBuildInputs:-} \
        ${buildInputs:-} ${propagatedBuildInputs:-}; do
    if [ ! -e "$_input" ]; then
        echo "error: build input $_input does not exist" >&2
        exit 1
    fi
    _addInput "$_input"
done

# -- phases --------------------------------------------------------------------------------------

# Make the sources unpacked from one source: a directory is copied, an archive extracted.
unpackFile() {
    curSrc=$1
    echo "unpacking source archive $curSrc"
    if [ -d "$curSrc" ]; then
        _dest=$(stripHash "$curSrc")
        cp -R "$curSrc" "$_dest"
        chmod -R u+w "$_dest"
        return 0
    fi
    case "$curSrc" in
        *.tar.gz | *.tgz | *.tar.Z) tar xzf "$curSrc" ;;
        *.tar.bz2 | *.tbz2 | *.tbz) tar xjf "$curSrc" ;;
        *.tar.xz | *.txz) tar xJf "$curSrc" ;;
        *.tar) tar xf "$curSrc" ;;
        *.zip) unzip -q "$curSrc" ;;
        *)
            if [ -n "${unpackCmd:-}" ]; then
                eval "$unpackCmd"
            elif tar tf "$curSrc" >/dev/null 2>&1; then
                tar xf "$curSrc"
            else
                echo "do not know how to unpack source archive $curSrc" >&2
                return 1
            fi
            ;;
    esac
}

unpackPhase() {
    runHook preUnpack
    if [ -z "${srcs:-}" ]; then
        if [ -z "${src:-}" ]; then
            echo 'variable $src or $srcs should point to the source' >&2
            return 1
        fi
        srcs=$src
    fi
    _before=$(ls -A)
    for _s in $srcs; do
        unpackFile "$_s"
    done
    if [ -n "${setSourceRoot:-}" ]; then
        runHook setSourceRoot
    elif [ -z "${sourceRoot:-}" ]; then
        sourceRoot=
        for _entry in $(ls -A); do
            case "
$_before
" in
                *"
$_entry
"*) continue ;;
            esac
            if [ -d "$_entry" ]; then
                if [ -n "$sourceRoot" ]; then
                    echo "unpacker produced multiple directories" >&2
                    return 1
                fi
                sourceRoot=$_entry
            fi
        done
    fi
    if [ -z "$sourceRoot" ]; then
        echo "unpacker appears to have produced no directories" >&2
        return 1
    fi
    echo "source root is $sourceRoot"
    if [ -z "${dontMakeSourcesWritable:-}" ]; then
        chmod -R u+w -- "$sourceRoot"
    fi
    runHook postUnpack
}

patchPhase() {
    runHook prePatch
    for _patch in ${patches:-}; do
        echo "applying patch $_patch"
        case "$_patch" in
            *.gz) _uncompress="gzip -d -c" ;;
            *.bz2) _uncompress="bzip2 -d -c" ;;
            *.xz) _uncompress="xz -d -c" ;;
            *) _uncompress="cat" ;;
        esac
        $_uncompress "$_patch" | patch ${patchFlags:--p1}
    done
    runHook postPatch
}

configurePhase() {
    runHook preConfigure
    if [ -z "${configureScript:-}" ] && [ -x ./configure ]; then
        configureScript=./configure
    fi
    if [ -n "${configureScript:-}" ]; then
        _flags=
        if [ -z "${dontAddPrefix:-}" ]; then
            _flags="${prefixKey:---prefix=}$prefix"
        fi
        echoCmd 'configure flags' $_flags ${configureFlags:-}
        $configureScript $_flags ${configureFlags:-}
    else
        echo "no configure script, doing nothing"
    fi
    runHook postConfigure
}

_haveMakefile() {
    [ -n "${makefile:-}" ] || [ -e Makefile ] || [ -e makefile ] || [ -e GNUmakefile ]
}

_make() {
    _jobs=1
    if [ -n "${enableParallelBuilding:-}" ]; then _jobs=$NIX_BUILD_CORES; fi
    echoCmd 'make flags' ${makefile:+-f $makefile} -j"$_jobs" SHELL="$SHELL" ${makeFlags:-} "$@"
    make ${makefile:+-f $makefile} -j"$_jobs" SHELL="$SHELL" ${makeFlags:-} "$@"
}

buildPhase() {
    runHook preBuild
    if [ -z "${makeFlags:-}" ] && ! _haveMakefile; then
        echo "no Makefile or custom buildPhase, doing nothing"
    else
        _make ${buildFlags:-}
    fi
    runHook postBuild
}

checkPhase() {
    runHook preCheck
    if ! _haveMakefile; then
        echo "no Makefile or custom checkPhase, doing nothing"
    else
        if [ -z "${checkTarget:-}" ]; then
            if make -n ${makefile:+-f $makefile} check >/dev/null 2>&1; then
                checkTarget=check
            elif make -n ${makefile:+-f $makefile} test >/dev/null 2>&1; then
                checkTarget=test
            fi
        fi
        if [ -z "${checkTarget:-}" ]; then
            echo "no check/test target in ${makefile:-Makefile}, doing nothing"
        else
            _make ${checkFlags:-} $checkTarget
        fi
    fi
    runHook postCheck
}

installPhase() {
    runHook preInstall
    if [ -z "${makeFlags:-}" ] && ! _haveMakefile; then
        echo "no Makefile or custom installPhase, doing nothing"
    else
        mkdir -p "$prefix"
        _make ${installFlags:-} ${installTargets:-install}
    fi
    runHook postInstall
}

# Rewrite `#!` lines of executable files to interpreters found on PATH (`/usr/bin/env bash`
# → the store path of bash); store interpreters are left alone.
patchShebangs() {
    for _root in "$@"; do
        find "$_root" -type f -perm -0100 2>/dev/null | while IFS= read -r _f; do
            _first=$(head -c 2 "$_f" 2>/dev/null || true)
            [ "$_first" = "#!" ] || continue
            _line=$(head -n 1 "$_f")
            _rest=${_line#\#!}
            set -- $_rest
            _interp=${1:-}
            [ -n "$_interp" ] || continue
            shift
            _args="$*"
            case "$_interp" in
                "$NIX_STORE"/*) continue ;;
            esac
            if [ "$(basename "$_interp")" = env ]; then
                case "${1:-}" in
                    -S) shift; _interp=${1:-} ; shift ;;
                    *) _interp=${1:-}; shift ;;
                esac
                _args="$*"
            fi
            _new=$(command -v "$(basename "$_interp")" 2>/dev/null || true)
            case "$_new" in
                "$NIX_STORE"/*) ;;
                *) continue ;;
            esac
            echo "$_f: interpreter directive changed from \"$_line\" to \"#!$_new${_args:+ $_args}\""
            {
                printf '#!%s\n' "$_new${_args:+ $_args}"
                tail -n +2 "$_f"
            } > "$_f.patchShebangs"
            cat "$_f.patchShebangs" > "$_f"
            rm -f "$_f.patchShebangs"
        done
    done
}

fixupPhase() {
    for _output in $outputs; do
        _dir=$(_var "$_output")
        if [ -e "$_dir" ]; then chmod -R u+w "$_dir"; fi
    done
    runHook preFixup
    for _output in $outputs; do
        _dir=$(_var "$_output")
        [ -e "$_dir" ] || continue
        if [ -z "${dontPatchShebangs:-}" ]; then
            patchShebangs "$_dir"
        fi
    done
    if [ -n "${propagatedBuildInputs:-}" ]; then
        mkdir -p "$prefix/nix-support"
        echo $propagatedBuildInputs > "$prefix/nix-support/propagated-build-inputs"
    fi
    if [ -n "${propagatedNativeBuildInputs:-}" ]; then
        mkdir -p "$prefix/nix-support"
        echo $propagatedNativeBuildInputs > "$prefix/nix-support/propagated-native-build-inputs"
    fi
    if [ -n "${setupHook:-}" ]; then
        mkdir -p "$prefix/nix-support"
        substituteAll "$setupHook" "$prefix/nix-support/setup-hook"
    fi
    runHook postFixup
}

installCheckPhase() {
    runHook preInstallCheck
    if _haveMakefile; then
        _make ${installCheckFlags:-} ${installCheckTarget:-installcheck}
    else
        echo "no Makefile or custom installCheckPhase, doing nothing"
    fi
    runHook postInstallCheck
}

distPhase() {
    runHook preDist
    _make ${distFlags:-} ${distTarget:-dist}
    if [ -z "${dontCopyDist:-}" ]; then
        mkdir -p "$out/tarballs"
        cp -pvd ${tarballs:-*.tar.gz} "$out/tarballs"
    fi
    runHook postDist
}

# Run one phase: the attribute of that name when the derivation sets one, else the function.
runPhase() {
    local _code
    curPhase=$1
    case "$curPhase" in
        unpackPhase) [ -z "${dontUnpack:-}" ] || return 0 ;;
        patchPhase) [ -z "${dontPatch:-}" ] || return 0 ;;
        configurePhase) [ -z "${dontConfigure:-}" ] || return 0 ;;
        buildPhase) [ -z "${dontBuild:-}" ] || return 0 ;;
        checkPhase) [ -n "${doCheck:-}" ] || return 0 ;;
        installPhase) [ -z "${dontInstall:-}" ] || return 0 ;;
        fixupPhase) [ -z "${dontFixup:-}" ] || return 0 ;;
        installCheckPhase) [ -n "${doInstallCheck:-}" ] || return 0 ;;
        distPhase) [ -n "${doDist:-}" ] || return 0 ;;
    esac
    echo "Running phase: $curPhase"
    _code=$(_var "$curPhase")
    if [ -n "$_code" ]; then
        eval "$_code"
    else
        "$curPhase"
    fi
    if [ "$curPhase" = unpackPhase ]; then
        cd "${sourceRoot:-.}"
    fi
}

# Run the build: `buildCommand` when set, else every phase of `phases` (or the standard list).
genericBuild() {
    if [ -f "${buildCommandPath:-}" ]; then
        . "$buildCommandPath"
        return
    fi
    if [ -n "${buildCommand:-}" ]; then
        eval "$buildCommand"
        return
    fi
    if [ -z "${phases:-}" ]; then
        phases="${prePhases:-} unpackPhase patchPhase ${preConfigurePhases:-} configurePhase \
            ${preBuildPhases:-} buildPhase checkPhase ${preInstallPhases:-} installPhase \
            ${preFixupPhases:-} fixupPhase installCheckPhase ${preDistPhases:-} distPhase \
            ${postPhases:-}"
    fi
    for _phase in $phases; do
        runPhase "$_phase"
    done
}

runHook postHook
