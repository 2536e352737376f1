"""Safely extract a raw .tar/.tar.gz/.zip archive (no absolute paths, no '..', no symlink escapes, size caps)."""
from imgdag.cli import parser, run
from imgdag.extract import ArchiveCaps, extract_archive


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--archive", required=True, help="the archive to extract")
    p.add_argument("--out", required=True, help="output folder (replaced atomically)")
    caps = ArchiveCaps()
    p.add_argument("--max-gib", type=float, default=caps.max_bytes / 2**30, help="refuse archives whose files total more")
    p.add_argument("--max-members", type=int, default=caps.max_members, help="refuse archives with more members")
    p.add_argument("--max-ratio", type=float, default=caps.max_ratio,
                   help="refuse a member (zip) or an archive (tar.gz) that expands more than this many times")
    p.add_argument("--listing", help="also write the extracted files' SHA-256 sums here (sha256sum format)")
    args = p.parse_args()
    caps = ArchiveCaps(int(args.max_gib * 2**30), args.max_members, args.max_ratio)
    print(extract_archive(args.archive, args.out, caps, args.listing).line())
    if args.listing:
        print(f"{args.listing}: the extracted files' SHA-256 sums")


if __name__ == "__main__":
    run(main)
