#!/bin/sh
# SPDX-License-Identifier: MIT
# docs/cli.md's `emails` worker (an --exec processor, run by
# tests/doc/cli-examples.js): the job arrives as JSON on stdin; a mail to
# bo@example.com fails, the others log, report progress and complete.
job=$(cat)
case $job in
*'"to":"bo@example.com"'*) echo "mailbox full" >&2; exit 1 ;;
esac
echo "log: rendering" >&2
echo "progress: 100" >&2
echo '{"sent":true}'
