#!/usr/bin/env bash
# One customer's whole DOKU Wallet life, through doku-bridged, against doku-snapsim.
# Run by scripts/demo.sh inside the test harness, which sets:
#   DOKUCTL                path of dokuctl
#   DOKU_BRIDGE_SOCKET     the daemon's socket
#   DOKU_SNAPSIM_CONTROL   the sandbox's control API (host:port), to play the customer
#   DOKU_TEST_CLIENT_ID    the merchant's client id
# Each step prints one line: what was done, DOKU's responseCode, the amounts.
set -euo pipefail

ctl=${DOKUCTL:?}
control=http://${DOKU_SNAPSIM_CONTROL:?}/control
merchant=${DOKU_TEST_CLIENT_ID:?}
customer=budi
phone=0812$(printf '%08d' $((RANDOM * RANDOM % 100000000)))
run=$(date +%s)
pin=246810
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# call [dokuctl options] COMMAND JSON: the reply goes to $out; dies on a non-OK status.
call() {
  if ! "$ctl" "$@" > "$out"; then
    echo "FAILED: dokuctl $*" >&2
    exit 1
  fi
}
field() { jq -r "$1 // empty" "$out"; }
# customer: the sandbox's control API plays the customer's part (web views, PIN).
customer() { curl -fsS "$control/$1" -d "$2"; }
step() { printf '%-28s %-8s %s\n' "$1" "$(field .responseCode)" "$2"; }

echo "doku-bridge demo: merchant $merchant, customer $phone"
printf '%-28s %-8s %s\n' "step" "SNAP" "what happened"

call create-account "{\"partnerReferenceNo\":\"reg-$run\",\"name\":\"Budi Santoso\",\"phoneNo\":\"$phone\",\"email\":\"budi.$run@example.com\",\"redirectUrl\":\"https://shop.example/pin\"}"
reg_ref=$(field .referenceNo)
step "create account" "DOKU sent an OTP to $phone (activity $reg_ref)"

otp=$(curl -fsS "$control/otps?phoneNo=$phone" | jq -r '.[0].otp')
call verify-otp "{\"originalPartnerReferenceNo\":\"reg-$run\",\"originalReferenceNo\":\"$reg_ref\",\"otp\":\"$otp\"}"
step "verify OTP" "OTP accepted; create-PIN page: $(field .qparamsURL)"

account=$(customer pin "{\"phoneNo\":\"$phone\",\"pin\":\"$pin\"}" | jq -r .accountId)
printf '%-28s %-8s %s\n' "customer sets PIN" "-" "account $account is active"

call bind-account "{\"partnerReferenceNo\":\"bind-$run\",\"redirectUrl\":\"https://shop.example/bound\",\"successParams\":{\"accountId\":\"$phone\"}}"
link=$(field .linkId)
step "bind account" "binding $link waits for the customer"
customer bindings/approve "{\"linkId\":\"$link\",\"pin\":\"$pin\"}" > /dev/null
printf '%-28s %-8s %s\n' "customer approves binding" "-" "with the PIN"

call inquire-account "{\"partnerReferenceNo\":\"bind-$run\"}"
auth=$(field .additionalInfo.authCode)
step "inquire account" "account $(field .accountNo), binding $(field .additionalInfo.remarks), authCode received"

call --customer "$customer" open-customer-session "{\"authCode\":\"$auth\"}"
step "open customer session" "session '$customer' valid until $(field .accessTokenExpiryTime) (tokens stay in the daemon)"

c=(--customer "$customer")
call "${c[@]}" get-balance "{\"partnerReferenceNo\":\"bal1-$run\"}"
step "balance" "$(field .accountInfo.amount.value) $(field .accountInfo.amount.currency)"

call "${c[@]}" top-up "{\"partnerReferenceNo\":\"top-$run\",\"customerNumber\":\"$account\",\"amount\":{\"value\":\"150000.00\",\"currency\":\"IDR\"},\"sessionId\":\"web-$run\",\"notes\":\"welcome credit\"}"
step "top up" "150000.00 IDR credited (reference $(field .referenceNo))"

call "${c[@]}" get-balance "{\"partnerReferenceNo\":\"bal2-$run\"}"
step "balance" "$(field .accountInfo.amount.value) $(field .accountInfo.amount.currency)"

purchase_time=$(TZ=Asia/Jakarta date +%Y-%m-%dT%H:%M:%S+07:00)
call "${c[@]}" purchase "{\"partnerReferenceNo\":\"inv-$run\",\"chargeToken\":\"DOKU\",\"amount\":{\"value\":\"42500.00\",\"currency\":\"IDR\"},\"urlParam\":{\"url\":\"https://shop.example/paid\",\"type\":\"PAY_RETURN\",\"isDeepLink\":\"N\",\"merchantId\":\"$merchant\"}}"
step "purchase" "42500.00 IDR, waiting for the customer's PIN"
customer purchases/approve "{\"partnerReferenceNo\":\"inv-$run\",\"pin\":\"$pin\"}" > /dev/null
printf '%-28s %-8s %s\n' "customer approves payment" "-" "with the PIN"

call "${c[@]}" get-purchase-status "{\"partnerReferenceNo\":\"inv-$run\",\"serviceCode\":\"54\",\"transactionDate\":\"$purchase_time\"}"
step "purchase status" "$(field .transactionStatusDesc) ($(field .latestTransactionStatus)), paid $(field .transAmount.value) IDR"

call "${c[@]}" refund-purchase "{\"originalPartnerReferenceNo\":\"inv-$run\",\"reason\":\"one item out of stock\",\"partnerRefundNo\":\"rf-$run\",\"refundAmount\":{\"value\":\"12500.00\",\"currency\":\"IDR\"}}"
step "refund" "12500.00 IDR back (refund $(field .refundNo))"

today=$(TZ=Asia/Jakarta date +%Y-%m-%d)
call "${c[@]}" list-transactions "{\"partnerReferenceNo\":\"hist-$run\",\"fromDateTime\":\"${today}T00:00:00+07:00\",\"toDateTime\":\"${today}T23:59:59+07:00\",\"pageSize\":\"10\",\"pageNumber\":\"0\"}"
step "history list" "$(jq -r '[.detailData[]? | "\(.type) \(.amount.value)"] | join(", ")' "$out")"

call "${c[@]}" get-transaction "{\"partnerReferenceNo\":\"inv-$run\"}"
step "history detail" "$(field .type) $(field .amount.value) IDR $(field .status): $(field .remark)"

call "${c[@]}" inquire-bank-account "{\"partnerReferenceNo\":\"bank-$run\",\"customerNumber\":\"$account\",\"amount\":{\"value\":\"50000.00\",\"currency\":\"IDR\"},\"beneficiaryAccountNumber\":\"1234567891\",\"additionalInfo\":{\"bankCode\":\"014\"}}"
step "bank account inquiry" "$(field .beneficiaryAccountNumber) at bank $(field .beneficiaryBankCode): $(field .beneficiaryAccountName)"

call "${c[@]}" transfer-to-bank "{\"partnerReferenceNo\":\"xfer-$run\",\"customerNumber\":\"$account\",\"accountType\":\"SAVINGS\",\"beneficiaryAccountNumber\":\"1234567891\",\"beneficiaryBankCode\":\"014\",\"amount\":{\"value\":\"50000.00\",\"currency\":\"IDR\"}}"
step "transfer to bank" "50000.00 IDR sent (reference $(field .referenceNo))"

call "${c[@]}" get-balance "{\"partnerReferenceNo\":\"bal3-$run\"}"
step "balance" "$(field .accountInfo.amount.value) $(field .accountInfo.amount.currency) (150000 - 42500 + 12500 - 50000)"

call unbind-account "{\"partnerReferenceNo\":\"unbind-$run\",\"linkId\":\"$link\",\"merchantId\":\"$merchant\"}"
unbind_ref=$(field .referenceNo)
step "unbind account" "unlink $(field .unlinkResult), DOKU sent an OTP"
otp=$(curl -fsS "$control/otps?phoneNo=$phone" | jq -r '.[0].otp')
call verify-otp "{\"originalPartnerReferenceNo\":\"unbind-$run\",\"originalReferenceNo\":\"$unbind_ref\",\"otp\":\"$otp\"}"
step "verify OTP" "account unbound"

call --customer "$customer" close-customer-session '{}'
printf '%-28s %-8s %s\n' "close customer session" "-" "the daemon forgot the customer's tokens"
call health '{}'
printf '%-28s %-8s %s\n' "health" "-" "$(jq -r '"calls served \(.callsServed // 0), failed \(.callsFailed // 0), token fetches \(.profiles[0].tokenFetches // 0)"' "$out")"
echo "demo: done"
