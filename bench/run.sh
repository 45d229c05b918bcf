#!/bin/sh
# run.sh JSON 'CMD' ['CMD' ...]: runs each benchmark program and prints one
# table of every row they report; writes the same rows to JSON.
#
# A benchmark program is any command that prints tab-separated lines:
#   row<TAB>NAME<TAB>OURS<TAB>PEER<TAB>UNIT<TAB>KIND<TAB>TARGET
#   skip<TAB>NAME<TAB>REASON         (a row that could not run, and why)
#   note<TAB>TEXT                    (printed under the table)
# KIND: abs   met when OURS <= TARGET (PEER is "-")
#       ratio met when OURS / PEER <= TARGET (PEER: the baseline, same run)
#       info  shown with its ratio, no target
# Other lines are ignored. To add rows (the Lua ones, say), add a program
# that prints this format and pass it as one more CMD (see bench/bench.mk).
# Exits non-zero if a program fails; an unmet target is not a failure.
set -u
json=$1; shift
tmp=${TMPDIR:-/tmp}/bench.$$
trap 'rm -f "$tmp"' EXIT INT TERM
: >"$tmp"
status=0
for cmd in "$@"; do
    if ! sh -c "$cmd" >>"$tmp"; then
        echo "bench: '$cmd' failed" >&2
        status=1
    fi
done

model=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo 2>/dev/null | head -n 1)
echo "machine: ${model:-unknown cpu}, $(nproc 2>/dev/null || echo '?') CPUs, $(uname -sm)"
awk -F '\t' -v json="$json" '
function num(x) { return sprintf((x < 10) ? "%.2f" : (x < 1000) ? "%.1f" : "%.0f", x) }
function jstr(s) { gsub(/\\/, "\\\\", s); gsub(/"/, "\\\"", s); return "\"" s "\"" }
function jnum(x) { return sprintf("%.6g", x) }
$1 == "row" && NF >= 7 {
    n++; name[n] = $2; unit[n] = $5; kind[n] = $6
    ours[n] = $3 + 0; haspeer[n] = ($4 != "-"); peer[n] = $4 + 0
    ratio[n] = (haspeer[n] && peer[n] > 0) ? ours[n] / peer[n] : -1
    if (kind[n] == "abs") { tgt[n] = "<= " $7 " " $5; met[n] = (ours[n] <= $7 + 0) ? "yes" : "NO" }
    else if (kind[n] == "ratio") { tgt[n] = "ratio <= " $7; met[n] = (ratio[n] >= 0 && ratio[n] <= $7 + 0) ? "yes" : "NO" }
    else { tgt[n] = "-"; met[n] = "-" }
    next
}
$1 == "skip" { n++; name[n] = $2; skip[n] = $3; next }
$1 == "note" { notes[++nn] = $2; next }
END {
    w = 8
    for (i = 1; i <= n; i++) if (length(name[i]) > w) w = length(name[i])
    fmt = "%-" w "s  %9s  %13s  %6s  %13s  %s\n"
    printf fmt, "workload", "ours", "peer/baseline", "ratio", "target", "met"
    line = ""; for (i = 0; i < w + 57; i++) line = line "-"; print line
    printf "[\n" >json
    for (i = 1; i <= n; i++) {
        sep = i < n ? "," : ""
        if (i in skip) {
            printf fmt, name[i], "-", "-", "-", "-", "skipped: " skip[i]
            printf "  {\"name\": %s, \"ours\": null, \"peer\": null, \"unit\": null, \"ratio\": null, \"target\": null, \"met\": null, \"skipped\": %s}%s\n", jstr(name[i]), jstr(skip[i]), sep >json
            continue
        }
        p = haspeer[i] ? num(peer[i]) : "-"
        r = (ratio[i] < 0) ? "-" : sprintf("%.2f", ratio[i])
        printf fmt, name[i], num(ours[i]), p, r, tgt[i], met[i]
        jp = haspeer[i] ? jnum(peer[i]) : "null"
        jr = (ratio[i] < 0) ? "null" : jnum(ratio[i])
        jt = (tgt[i] == "-") ? "null" : jstr(tgt[i])
        jm = (met[i] == "yes") ? "true" : (met[i] == "NO") ? "false" : "null"
        printf "  {\"name\": %s, \"ours\": %s, \"peer\": %s, \"unit\": %s, \"ratio\": %s, \"target\": %s, \"met\": %s}%s\n", jstr(name[i]), jnum(ours[i]), jp, jstr(unit[i]), jr, jt, jm, sep >json
        if (met[i] == "NO") failed++
    }
    printf "]\n" >json
    print line
    for (i = 1; i <= nn; i++) print "* " notes[i]
    printf "%d rows, %d targets missed; rows written to %s\n", n, failed, json
}' "$tmp"
exit $status
