#!/usr/bin/env bash
# rgw_smoke.sh - proves that the S3 server named by DV_TEST_S3_* accepts
# SigV4-signed requests and keeps bytes intact: create a bucket, PUT an object,
# GET it back and compare, a two-part multipart upload, list, then clean up.
#
# Needs DV_TEST_S3_ENDPOINT, DV_TEST_S3_REGION, DV_TEST_S3_ACCESS_KEY,
# DV_TEST_S3_SECRET_KEY (e.g. `set -a; . DIR/env; set +a` after
# `tools/lib/rgw.sh start DIR`) and curl >= 7.75 (--aws-sigv4).
# Never skips: missing variables or an unreachable server are failures.
# Prints "N passed, N failed" and exits non-zero when anything failed.

set -uo pipefail

passed=0
failed=0
ok() {
	passed=$((passed + 1))
	echo "ok: $*"
}
bad() {
	failed=$((failed + 1))
	echo "FAIL: $*" >&2
}
finish() {
	echo "$passed passed, $failed failed"
	((failed == 0))
	exit
}
fatal() {
	bad "$*"
	finish
}

for v in DV_TEST_S3_ENDPOINT DV_TEST_S3_REGION DV_TEST_S3_ACCESS_KEY DV_TEST_S3_SECRET_KEY; do
	[[ -n ${!v:-} ]] || fatal "$v is not set (start a server with tools/lib/rgw.sh start DIR, then source DIR/env)"
done
command -v curl >/dev/null || fatal "curl is not installed"

ep=${DV_TEST_S3_ENDPOINT%/}
work=$(mktemp -d) || fatal "mktemp failed"
trap 'rm -rf "$work"' EXIT
bucket=dv-smoke-$(date +%s)-$$-$RANDOM

# s3 OUTFILE METHOD PATH [curl args...]: signed request; prints the HTTP status
# ("000" when the server did not answer). Headers go to $work/headers.
# S3_SECRET overrides the secret (to check that a wrong one is refused).
s3() {
	local out=$1 method=$2 path=$3
	shift 3
	# The credentials reach curl on stdin (-K -), never in a command line.
	printf 'user = "%s:%s"\n' "$DV_TEST_S3_ACCESS_KEY" "${S3_SECRET:-$DV_TEST_S3_SECRET_KEY}" |
		curl -s --max-time 60 -K - -o "$out" -D "$work/headers" -w '%{http_code}' \
			--aws-sigv4 "aws:amz:$DV_TEST_S3_REGION:s3" \
			-H "x-amz-content-sha256: UNSIGNED-PAYLOAD" \
			-X "$method" "$@" "$ep$path"
}

# expect WHAT WANT GOT [BODYFILE]
expect() {
	if [[ $3 == "$2" ]]; then
		ok "$1 (HTTP $3)"
		return 0
	fi
	if [[ $3 == 000 ]]; then
		bad "$1: no answer from $ep"
	else
		bad "$1: HTTP $3, wanted $2${4:+: $(head -c 400 "$4" 2>/dev/null)}"
	fi
	return 1
}

code=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' "$ep/")
[[ $code != 000 ]] || fatal "S3 server $ep does not answer"

code=$(s3 "$work/out" PUT "/$bucket")
expect "create bucket $bucket" 200 "$code" "$work/out" || finish

# An odd size with every byte value, so that truncation or text mangling shows.
head -c 1048583 /dev/urandom >"$work/obj"
code=$(s3 "$work/out" PUT "/$bucket/dir/obj.bin" --data-binary "@$work/obj" \
	-H "Content-Type: application/octet-stream")
expect "put object (1 MiB + 7 B)" 200 "$code" "$work/out"

code=$(s3 "$work/got" GET "/$bucket/dir/obj.bin")
if expect "get object" 200 "$code" "$work/got"; then
	if cmp -s "$work/obj" "$work/got"; then ok "object bytes match"; else bad "object bytes differ"; fi
fi

code=$(s3 "$work/got" GET "/$bucket/dir/obj.bin" -H "Range: bytes=1000-1999")
if expect "ranged get" 206 "$code" "$work/got"; then
	if cmp -s <(tail -c +1001 "$work/obj" | head -c 1000) "$work/got"; then
		ok "range bytes match"
	else
		bad "range bytes differ"
	fi
fi

# Multipart: a 5 MiB first part (the minimum) and a short last part.
head -c $((5 * 1024 * 1024)) /dev/urandom >"$work/p1"
head -c 12345 /dev/urandom >"$work/p2"
code=$(s3 "$work/out" POST "/$bucket/mp.bin?uploads=")
upload=$(sed -n 's:.*<UploadId>\([^<]*\)</UploadId>.*:\1:p' "$work/out")
if expect "initiate multipart" 200 "$code" "$work/out" && [[ -n $upload ]]; then
	parts=""
	for n in 1 2; do
		code=$(s3 "$work/out" PUT "/$bucket/mp.bin?partNumber=$n&uploadId=$upload" \
			--data-binary "@$work/p$n")
		etag=$(sed -n 's/^[Ee][Tt][Aa][Gg]: *\([^[:space:]]*\).*/\1/p' "$work/headers")
		expect "upload part $n" 200 "$code" "$work/out" || break
		parts+="<Part><PartNumber>$n</PartNumber><ETag>$etag</ETag></Part>"
	done
	printf '<CompleteMultipartUpload>%s</CompleteMultipartUpload>' "$parts" >"$work/complete.xml"
	code=$(s3 "$work/out" POST "/$bucket/mp.bin?uploadId=$upload" --data-binary "@$work/complete.xml")
	expect "complete multipart" 200 "$code" "$work/out"
	code=$(s3 "$work/got" GET "/$bucket/mp.bin")
	if expect "get multipart object" 200 "$code" "$work/got"; then
		if cmp -s <(cat "$work/p1" "$work/p2") "$work/got"; then
			ok "multipart bytes match"
		else
			bad "multipart bytes differ"
		fi
	fi
else
	[[ -n $upload ]] || bad "initiate multipart: no UploadId in answer"
fi

code=$(s3 "$work/out" GET "/$bucket?list-type=2")
if expect "list bucket" 200 "$code" "$work/out"; then
	if grep -q '<Key>dir/obj.bin</Key>' "$work/out" && grep -q '<Key>mp.bin</Key>' "$work/out"; then
		ok "listing names both objects"
	else
		bad "listing lacks an object: $(head -c 400 "$work/out")"
	fi
fi

code=$(S3_SECRET=wrong-secret s3 "$work/out" GET "/$bucket/dir/obj.bin")
expect "wrong secret is refused" 403 "$code" "$work/out"

for key in dir/obj.bin mp.bin; do
	code=$(s3 "$work/out" DELETE "/$bucket/$key")
	expect "delete $key" 204 "$code" "$work/out"
done
code=$(s3 "$work/out" DELETE "/$bucket")
expect "delete bucket" 204 "$code" "$work/out"

finish
