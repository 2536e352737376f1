"""Safely extract a raw .tar/.tar.gz/.zip archive (no absolute paths, no '..', no symlink escapes, size caps)."""
from imgdag.cli import parser, run
from imgdag.extract import DEFAULT_MAX_BYTES, DEFAULT_MAX_MEMBERS, extract_archive


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--archive", required=True, help="the archive to extract")
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="refuse archives whose files total more")
    p.add_argument("--max-members", type=int, default=DEFAULT_MAX_MEMBERS, help="refuse archives with more members")
    args = p.parse_args()
    print(extract_archive(args.archive, args.out, args.max_bytes, args.max_members).line())


if __name__ == "__main__":
    run(main)
