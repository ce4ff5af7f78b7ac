"""Filing in batches: the documents (and sent messages) of one step move together, each folder
fsynced once; two files of the same name in one batch never share a target, and a move that
fails part-way leaves the ones before it filed and the rest named for recover()."""

from __future__ import annotations

from invoice_mailer import storage
from tests.archive.test_archive import bench, finish, month_folder  # noqa: F401 (the fixture)


def test_move_many_stops_at_the_first_file_that_cannot_move(tmp_path):
    source, target = tmp_path / "from", tmp_path / "to"
    source.mkdir()
    target.mkdir()
    (source / "a").write_text("a")
    (source / "c").write_text("c")
    moved, error = storage.move_many(
        [(source / name, target / name) for name in ("a", "b", "c")]  # b does not exist
    )
    assert moved == 1 and isinstance(error, FileNotFoundError)
    assert (target / "a").read_text() == "a"
    assert (source / "c").exists() and not (target / "c").exists()


def test_unique_path_skips_a_name_already_taken_by_the_same_batch(tmp_path):
    first = storage.unique_path(tmp_path, "Fattura_1.pdf")
    second = storage.unique_path(tmp_path, "Fattura_1.pdf", {first})
    assert (first.name, second.name) == ("Fattura_1.pdf", "Fattura_1 (2).pdf")


def test_two_documents_of_the_same_name_filed_in_one_step_keep_both_files(bench):  # noqa: F811
    bench.add_invoice(data=b"%PDF-1.4 first\n")
    bench.add_invoice(data=b"%PDF-1.4 second\n")  # re-issued before the first was filed
    finish(bench, "sent", sent_at=bench.clock())
    assert bench.archive.step() == 2
    folder = month_folder(bench)
    names = {path.name: path.read_bytes() for path in folder.glob("Fattura_123_2026_C042*.pdf")}
    assert names == {
        "Fattura_123_2026_C042.pdf": b"%PDF-1.4 first\n",
        "Fattura_123_2026_C042 (2).pdf": b"%PDF-1.4 second\n",
    }
    rows = bench.ledger.query("SELECT state, location, moving_to FROM documents ORDER BY id")
    assert [(r["state"], r["moving_to"]) for r in rows] == [("done", None), ("done", None)]
    assert len({r["location"] for r in rows}) == 2
