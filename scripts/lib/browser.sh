# Installs the browser the page scenarios drive (sourced by scripts/test): Debian's Chromium
# and its ChromeDriver, when the machine has neither. No browser is downloaded from anywhere
# else; the suite finds them at /usr/bin (or $REGSTACK_TEST_CHROMIUM, $REGSTACK_TEST_CHROMEDRIVER).

install_browser() {
  if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
    return 0
  fi
  echo "installing Chromium and ChromeDriver from Debian's packages"
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium chromium-driver >/dev/null
}
