#!/usr/bin/env bash
# Refreshes the GraphiQL assets smsauth embeds in its binary (src/http/graphiql.rs),
# so that `cargo build` never needs npm and the playground needs no CDN.
#
#   assets/graphiql/refresh.sh            # the versions pinned below
#
# Downloads the pinned packages with `npm pack` into a scratch folder, checks
# each tarball against the integrity the registry publishes, and copies the
# production builds and their licence files here. The only change made to the
# files: the trailing `sourceMappingURL` comment is dropped (the maps are not
# shipped, so a browser's developer tools would ask for a file that 404s).
# Each file also gets a gzip copy (`gzip -9 -n`, reproducible), served to
# browsers that accept it: about a quarter of the size on slow links.
# Commit the result; the page's integrity attributes are computed from these
# bytes, so nothing else needs editing.
#
# graphiql 4 is the last major version with a build usable without a bundler
# (graphiql.min.js, a UMD file reading the globals React and ReactDOM); React
# 18 is the last with UMD builds, and graphiql 4 accepts React 18 or 19.
set -euo pipefail

GRAPHIQL_VERSION=4.1.2
REACT_VERSION=18.3.1

here="$(cd "$(dirname "$0")" && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

fetch() { # fetch PACKAGE VERSION -> unpacks into $scratch/PACKAGE
  local package=$1 version=$2
  (cd "$scratch" && npm pack --silent "$package@$version" >/dev/null)
  local tarball="$scratch/$package-$version.tgz"
  local expected actual
  expected=$(npm view "$package@$version" dist.integrity)
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
  if [ "$expected" != "$actual" ]; then
    echo "$package@$version: tarball integrity $actual, the registry says $expected" >&2
    exit 1
  fi
  mkdir -p "$scratch/$package"
  tar xzf "$tarball" -C "$scratch/$package" --strip-components=1
  echo "$package@$version $expected" >>"$scratch/VERSIONS"
}

copy() { # copy SOURCE DESTINATION, without the sourceMappingURL comment; and its .gz
  grep -v '^//# sourceMappingURL=' "$1" >"$here/$2"
  gzip -9 -n -c "$here/$2" >"$here/$2.gz"
}

fetch graphiql "$GRAPHIQL_VERSION"
fetch react "$REACT_VERSION"
fetch react-dom "$REACT_VERSION"

copy "$scratch/graphiql/graphiql.min.js" graphiql.min.js
copy "$scratch/graphiql/graphiql.min.css" graphiql.min.css
copy "$scratch/react/umd/react.production.min.js" react.production.min.js
copy "$scratch/react-dom/umd/react-dom.production.min.js" react-dom.production.min.js
cp "$scratch/graphiql/LICENSE" "$here/LICENSE-graphiql"
cp "$scratch/react/LICENSE" "$here/LICENSE-react"
cp "$scratch/react-dom/LICENSE" "$here/LICENSE-react-dom"
{
  echo "# Packages these files come from, with the registry's tarball integrity."
  echo "# Written by refresh.sh; do not edit by hand."
  cat "$scratch/VERSIONS"
} >"$here/VERSIONS"
echo "GraphiQL assets refreshed in $here:"
ls -l "$here"
