#!/usr/bin/env bash
# Install strait-relay or strait-edge and its hardened systemd unit on
# Debian or Ubuntu. Run as root on the machine that will run it:
#
#   sudo scripts/install.sh relay                 # build from this checkout (needs Go)
#   sudo scripts/install.sh edge --binary ./strait-edge
#   sudo scripts/install.sh relay --url https://example.com/strait-relay-linux-amd64 --sha256 <hex>
#
# It creates the system user "strait", /etc/strait and /var/lib/strait
# (0700, owned by strait), installs /usr/local/bin/strait-<role> and
# /etc/systemd/system/strait-<role>.service, and prints the next step
# (init or join). It starts nothing and changes no firewall.
set -euo pipefail

role=${1:-}
case "$role" in
  relay|edge) shift ;;
  *) echo "usage: $0 relay|edge [--binary PATH | --url URL --sha256 HEX]" >&2; exit 2 ;;
esac
binary= url= sum=
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=$2; shift 2 ;;
    --url) url=$2; shift 2 ;;
    --sha256) sum=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "run as root (sudo)" >&2; exit 1; }
command -v systemctl >/dev/null || { echo "systemd is required" >&2; exit 1; }

here=$(cd "$(dirname "$0")/.." && pwd)
name=strait-$role
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ -n "$url" ]; then
  [ -n "$sum" ] || { echo "--url needs --sha256: a binary is never installed unchecked" >&2; exit 1; }
  echo "==> downloading $url"
  curl -fsSL --proto '=https' -o "$tmp/$name" "$url"
  echo "$sum  $tmp/$name" | sha256sum -c -
  binary=$tmp/$name
elif [ -z "$binary" ]; then
  command -v go >/dev/null || { echo "no Go toolchain: pass --binary or --url" >&2; exit 1; }
  echo "==> building $name from $here"
  (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$tmp/$name" "./cmd/$name")
  binary=$tmp/$name
fi

echo "==> installing /usr/local/bin/$name"
install -m 0755 "$binary" "/usr/local/bin/$name"
if ! id strait >/dev/null 2>&1; then
  echo "==> creating system user strait"
  useradd --system --user-group --home-dir /var/lib/strait --shell /usr/sbin/nologin strait
fi
install -d -m 0700 -o strait -g strait /etc/strait /var/lib/strait
install -m 0644 "$here/scripts/config/$name.service" "/etc/systemd/system/$name.service"
systemctl daemon-reload

echo
if [ "$role" = relay ]; then
  cat <<MSG
next, with your provider keys in the environment:
  sudo OPENAI_API_KEY=sk-... strait-relay init --addr <this machine's public name or IP>
  sudo systemctl enable --now strait-relay
then open TCP and UDP 443 in the firewall / security group, and run the
printed "strait-edge join ..." on the edge.
MSG
else
  cat <<MSG
next:
  sudo strait-edge join <token printed by strait-relay init>
  sudo systemctl enable --now strait-edge
  strait-edge doctor --config /etc/strait/edge.yaml
MSG
fi
