# shellcheck shell=bash
# Splitting files into parts and joining them back, checked by sha256: how bench/gpu/prepare.sh carries a
# wheel larger than one device call takes (onnxruntime-gpu: 244 MiB) and how bench/gpu/run.sh rebuilds it.
# Sourced, not run. Each split file adds one line to MANIFEST in its folder: "<sha256> <name> <parts>",
# its parts named <name>.part000, <name>.part001, ...; an unsplit file is one part.
#
# Exit status of join_parts: 0 joined and verified; 2 a part is missing or a joined file's sha256 differs
# (the message names the file).

# split_file FILE PART_BYTES OUT_DIR: write FILE's parts into OUT_DIR and append its line to OUT_DIR/MANIFEST.
split_file() {
  local file="$1" part_bytes="$2" out="$3" name sum count
  name="$(basename "$file")"
  mkdir -p "$out"
  split --bytes="$part_bytes" --numeric-suffixes=0 --suffix-length=3 "$file" "$out/$name.part"
  sum="$(sha256sum "$file" | cut -d' ' -f1)"
  count="$(find "$out" -maxdepth 1 -name "$name.part*" | wc -l)"
  echo "$sum $name $count" >>"$out/MANIFEST"
}

# join_parts MANIFEST PARTS_DIR OUT_DIR: rebuild every file MANIFEST names from its parts in PARTS_DIR
# (parts may have been carried in several folders and gathered there) into OUT_DIR, and verify each.
join_parts() {
  local manifest="$1" parts="$2" out="$3" sum name count i part
  mkdir -p "$out"
  while read -r sum name count; do
    : >"$out/$name"
    for ((i = 0; i < count; i++)); do
      part="$(printf '%s/%s.part%03d' "$parts" "$name" "$i")"
      if [[ ! -f "$part" ]]; then
        echo "join_parts: $name: part $part is missing (carried all groups?)" >&2
        return 2
      fi
      cat "$part" >>"$out/$name"
    done
    if [[ "$(sha256sum "$out/$name" | cut -d' ' -f1)" != "$sum" ]]; then
      echo "join_parts: $name: sha256 differs from $manifest: a part is damaged or from another download" >&2
      return 2
    fi
  done <"$manifest"
}
