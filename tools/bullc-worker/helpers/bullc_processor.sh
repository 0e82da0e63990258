# SPDX-License-Identifier: MIT
# A POSIX shell processor for bullc-worker --exec-persistent (docs/worker.md).
#
#   #!/bin/sh
#   . /path/to/bullc_processor.sh
#   process() {                      # one job: $BULLC_JOB is its JSON line
#       bullc_progress 50
#       bullc_log "working on $BULLC_JOB_ID"
#       bullc_result "{\"data\":$BULLC_DATA}"   # or bullc_fail "reason"
#   }
#   bullc_run process
#
# bullc_run reads one job per line until EOF and calls the function once per
# job, in this shell (no process per job). Set for it: BULLC_JOB (the line),
# BULLC_JOB_ID (the id as JSON text, quotes included), BULLC_NAME (the name
# as JSON text) and BULLC_DATA (the data as JSON text), cut out of the line
# without a parser. The function ends the job with bullc_result JSON (null
# when omitted), bullc_fail TEXT or bullc_fail_unrecoverable TEXT; returning
# without either completes it with null after status 0 and fails it after
# any other status. bullc_progress JSON, bullc_log TEXT and bullc_data JSON
# update the job meanwhile. Its stdout is the protocol: send a command's
# output elsewhere (>&2 puts it in bullc-worker's log).

_bullc_nl='
'
_bullc_tab='	'

_bullc_cr=$(printf '\r')

# Replaces every $1 in _bullc_q with $2 (quoted patterns: literal in any sh).
_bullc_replace() {
    _bullc_s=$_bullc_q
    _bullc_q=
    while :; do
        case $_bullc_s in
        *"$1"*)
            _bullc_q=$_bullc_q${_bullc_s%%"$1"*}$2
            _bullc_s=${_bullc_s#*"$1"}
            ;;
        *) break ;;
        esac
    done
    _bullc_q=$_bullc_q$_bullc_s
}

# $1 as a JSON string, into _bullc_q: backslash, quote, newline, tab and
# carriage return escaped (other control characters are not expected in
# a log line or a reason).
_bullc_quote() {
    _bullc_q=$1
    _bullc_replace '\' '\\'
    _bullc_replace '"' '\"'
    _bullc_replace "$_bullc_nl" '\n'
    _bullc_replace "$_bullc_tab" '\t'
    _bullc_replace "$_bullc_cr" '\r'
    _bullc_q="\"$_bullc_q\""
}

bullc_result() {
    printf '{"id":%s,"result":%s}\n' "$BULLC_JOB_ID" "${1:-null}"
    _bullc_done=1
}

bullc_fail() {
    _bullc_quote "${1:-failed}"
    printf '{"id":%s,"error":%s}\n' "$BULLC_JOB_ID" "$_bullc_q"
    _bullc_done=1
}

bullc_fail_unrecoverable() {
    _bullc_quote "${1:-failed}"
    printf '{"id":%s,"error":%s,"unrecoverable":true}\n' "$BULLC_JOB_ID" "$_bullc_q"
    _bullc_done=1
}

bullc_progress() { printf '{"id":%s,"progress":%s}\n' "$BULLC_JOB_ID" "$1"; }

bullc_log() {
    _bullc_quote "$1"
    printf '{"id":%s,"log":%s}\n' "$BULLC_JOB_ID" "$_bullc_q"
}

bullc_data() {
    BULLC_DATA=$1
    printf '{"id":%s,"data":%s}\n' "$BULLC_JOB_ID" "$1"
}

# The line starts {"id":ID,"name":NAME,"data":DATA,"opts":{...} as
# bullc-worker writes it. A JSON string cannot hold a bare `","`-led key
# (its quotes are escaped), so the first ,"name": ends the id and the first
# ,"data": ends the name; the data ends at the last ,"opts": (the options
# object and what follows hold no "opts" key).
bullc_run() {
    while IFS= read -r BULLC_JOB || [ -n "$BULLC_JOB" ]; do
        [ -n "$BULLC_JOB" ] || continue
        # a cancel line for a job already answered: the shell cannot be told
        # mid-job, nor look ahead at one waiting behind the current job
        # (--exec-children): bullc-worker stops it after --kill-grace instead
        case $BULLC_JOB in '{"cancel":'*) continue ;; esac
        BULLC_JOB_ID=${BULLC_JOB#\{\"id\":}
        BULLC_JOB_ID=${BULLC_JOB_ID%%,\"name\":*}
        BULLC_NAME=${BULLC_JOB#*,\"name\":}
        BULLC_NAME=${BULLC_NAME%%,\"data\":*}
        BULLC_DATA=${BULLC_JOB#*,\"data\":}
        BULLC_DATA=${BULLC_DATA%,\"opts\":*}
        _bullc_done=
        "$@"
        _bullc_status=$?
        if [ -z "$_bullc_done" ]; then
            if [ "$_bullc_status" -eq 0 ]; then
                bullc_result null
            else
                bullc_fail "the processor returned status $_bullc_status"
            fi
        fi
    done
}
