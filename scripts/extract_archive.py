"""Safely extract a raw .tar/.tar.gz/.zip archive (no absolute paths, no '..', no symlink escapes, size caps)."""
from imgdag.cli import parser, run
from imgdag.extract import DEFAULT_MAX_BYTES, DEFAULT_MAX_MEMBERS, extract_archive, write_sha256_listing


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--archive", required=True, help="the archive to extract")
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    p.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES, help="refuse archives whose files total more")
    p.add_argument("--max-members", type=int, default=DEFAULT_MAX_MEMBERS, help="refuse archives with more members")
    p.add_argument("--listing", help="also write the extracted files' SHA-256 sums here (sha256sum format)")
    args = p.parse_args()
    print(extract_archive(args.archive, args.out, args.max_bytes, args.max_members).line())
    if args.listing:
        print(f"{args.listing}: {write_sha256_listing(args.out, args.listing)} files listed")


if __name__ == "__main__":
    run(main)
