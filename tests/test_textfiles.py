"""One text reader: BOM and CRLF files read exactly as plain UTF-8/LF; non-UTF-8 names file and line."""
import pytest
from conftest import with_peak_memory

from imgdag.errors import DataError
from imgdag.formats.class_list import read_class_list
from imgdag.formats.cntk_map import iter_cntk_map, read_cntk_map
from imgdag.formats.index_table import read_tiny_index
from imgdag.formats.lst import iter_lst, read_lst
from imgdag.formats.recordio import read_idx
from imgdag.layouts.dog_breed import parse_labels_csv
from imgdag.layouts.tiny_imagenet import parse_val_annotations, parse_wnids
from imgdag.layouts.tree import DirTree
from imgdag.textfiles import read_lines, read_text, stream_lines, text_lines

# (reader of a path, plain UTF-8/LF text of a valid file)
READERS = {
    "class_list": (read_class_list, "n01\nn02\n"),
    "cntk_map": (read_cntk_map, "a/x.JPEG\t0\nb/y.JPEG\t1\n"),
    "lst": (read_lst, "0\t1.000000\ta.png\n1\t0.000000\tb.png\n"),
    "idx": (read_idx, "0\t0\n1\t64\n"),
    "tiny_index": (read_tiny_index, "file,label,wnid,x0,y0,x1,y1\na.JPEG,0,n01,1,2,3,4\n"),
    "tree_wnids": (lambda p: parse_wnids(DirTree(p.parent).read_text(p.name), p), "n01\nn02\n"),
    "tree_val": (lambda p: parse_val_annotations(DirTree(p.parent).read_text(p.name), p),
                 "val_0.JPEG\tn01\t0\t1\t2\t3\n"),
    "labels_csv": (lambda p: parse_labels_csv(DirTree(p.parent).read_text(p.name), p), "id,breed\nab,pug\n"),
}


@pytest.mark.parametrize("kind", sorted(READERS))
def test_bom_and_crlf_read_as_plain(tmp_path, kind):
    reader, text = READERS[kind]
    plain, windows = tmp_path / "plain.txt", tmp_path / "windows.txt"
    plain.write_bytes(text.encode())
    windows.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    assert reader(windows) == reader(plain)


@pytest.mark.parametrize("kind", sorted(READERS))
def test_not_utf8_names_file_and_line(tmp_path, kind):
    reader, text = READERS[kind]
    bad = tmp_path / "latin1.txt"
    first, rest = text.split("\n", 1)
    bad.write_bytes(first.encode() + b"\n\xe9" + rest.encode())
    with pytest.raises(DataError, match=r"latin1\.txt.*line 2: not UTF-8"):
        reader(bad)


def test_missing_file_says_what_was_expected(tmp_path):
    with pytest.raises(DataError, match="missing.*expected a list"):
        read_text(tmp_path / "nope.txt", "a list")


@pytest.mark.parametrize("text", ["", "\n", "a", "a\n", "a\nb", "a\n\n", "\n\na\n\n\nb", "a\fb\u2028c\n"])
def test_text_lines_split_at_lf_only_without_a_last_empty_line(text):
    lines = text.split("\n")
    assert list(text_lines(text)) == (lines[:-1] if lines[-1] == "" else lines)


LONG_CRLF = "".join(f"{i}\t{'x' * (i % 13)}\r\n" for i in range(20_000))  # CRLFs at every block offset


@pytest.mark.parametrize("data", [
    b"", b"\n", b"a", b"a\r\nb\rc\n\r\n", b"\xef\xbb\xbfa\nb", b"a\fb\xe2\x80\xa8c\r", b"\r\r\n\n",
    LONG_CRLF.encode(), b"\xef\xbb\xbf" + LONG_CRLF.replace("\r\n", "\r").encode(),
])
def test_streamed_lines_are_the_lines_read_whole(tmp_path, data):
    """The .lst reader streams its file: line for line what the whole-file reader gives."""
    (tmp_path / "t.txt").write_bytes(data)
    assert list(stream_lines(tmp_path / "t.txt")) == list(read_lines(tmp_path / "t.txt"))


def test_streamed_lines_name_a_late_non_utf8_line_and_a_missing_file(tmp_path):
    (tmp_path / "t.txt").write_bytes(LONG_CRLF.encode() + b"ok\n\xe9\n")
    lines = stream_lines(tmp_path / "t.txt")
    with pytest.raises(DataError, match=r"t\.txt.*line 20002: not UTF-8"):
        list(lines)
    with pytest.raises(DataError, match="missing.*expected a list"):
        stream_lines(tmp_path / "nope.txt", "a list")  # at the call, before any line is asked for


@pytest.mark.parametrize("reader, line", [(iter_cntk_map, "cls/{i:06d}.JPEG\t{c}\n"),
                                          (iter_lst, "{i}\t{c}.000000\tcls/{i:06d}.JPEG\n")])
def test_readers_of_long_lists_hold_no_line_they_gave(tmp_path, reader, line):
    """Map files and .lst files of a million lines are read as their rows are used: peak
    memory grows by under 4 bytes a line from 4,000 to 16,000 lines (the whole text, held
    before, is 25-35 bytes a line)."""
    def peak(lines: int) -> int:
        (tmp_path / "list.txt").write_text("".join(line.format(i=i, c=i % 7) for i in range(lines)))
        read, peak = with_peak_memory(lambda: sum(1 for _ in reader(tmp_path / "list.txt")))
        assert read == lines
        return peak

    small, large = peak(4000), peak(16000)
    assert (large - small) / 12000 < 4, f"peak {small} -> {large} bytes"
