"""Business cards: the vCards parse with a vCard library, the QR codes decode back to the
SIP address with a real decoder (zxing-cpp), from the PNG and from the SVG drawn by cairo."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import vobject
import zxingcpp
from fixtures.properties import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from sipctl.cli import app
from sipctl.errors import SpecError
from sipctl.reconciler.render.cards import card_files, vcard
from sipctl.reconciler.render.webrtc import page_files
from sipctl.schemas.loader import load_spec, load_spec_text
from sipctl.schemas.names import display_domain

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
EXAMPLE = EXAMPLES / "mysite.yaml"
NAMES = {
    "director": ("Anna Petrova", "individual"),
    "alex": ("Alex Smirnov", "individual"),
    "101": ("101", "individual"),
    "sales": ("sales", "individual"),
    "seminar": ("Seminar room", "group"),
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("render")
    result = CliRunner().invoke(app, ["render", "-f", str(EXAMPLE), "--dir", str(out)])
    assert result.exit_code == 0, result.output
    return out / "cards"


def _decode(image: Image.Image) -> list[str]:
    return [found.text for found in zxingcpp.read_barcodes(image.convert("L"))]


def test_every_vcard_parses_and_carries_the_sip_address(rendered: Path) -> None:
    for name, (shown, kind) in NAMES.items():
        raw = (rendered / f"{name}.vcf").read_bytes()
        assert raw.endswith(b"\r\nEND:VCARD\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
        card = vobject.readOne(raw.decode())
        address = f"sip:{name}@mysite.ru"
        assert card.version.value == "4.0"
        assert card.fn.value == shown
        assert card.kind.value == kind
        assert card.org.value == ["Mysite LLC"]
        assert card.impp.value == address
        assert card.tel.value == address and card.tel.params == {"VALUE": ["uri"]}


@pytest.mark.programs  # cairosvg needs libcairo2, which scripts/test installs
def test_every_qr_code_decodes_back_to_the_address(rendered: Path) -> None:
    import cairosvg  # here: without libcairo2 its import fails, and the fast tier has none

    for name in NAMES:
        address = f"sip:{name}@mysite.ru"
        assert _decode(Image.open(rendered / f"{name}.png")) == [address], name
        drawn = cairosvg.svg2png(url=str(rendered / f"{name}.svg"))
        assert _decode(Image.open(io.BytesIO(drawn))) == [address], name


def test_the_index_shows_every_card_and_loads_only_files_beside_it(rendered: Path) -> None:
    index = (rendered / "index.html").read_text()
    for name, (shown, _) in NAMES.items():
        assert f'data-sipctl-card="{name}"' in index
        assert f'<img src="{name}.svg"' in index and f'href="{name}.vcf"' in index
        assert f"<h2>{shown}</h2>" in index and f'href="sip:{name}@mysite.ru"' in index
    assert "://" not in index and 'src="/' not in index  # nothing from another place


def test_the_page_links_each_name_to_its_card() -> None:
    files = page_files(load_spec(EXAMPLE).spec)
    for name in ("director", "alex"):  # the page's names
        assert f'data-sipctl-card="{name}" href="cards/{name}.vcf"' in files["index.html"]
        assert vobject.readOne(files[f"cards/{name}.vcf"]).impp.value == f"sip:{name}@mysite.ru"
    assert "cards/seminar.vcf" not in files  # not on the page


def test_render_without_the_extra_writes_the_vcards_and_says_how(tmp_path: Path) -> None:
    blocked = (
        "import sys; sys.modules['segno'] = None; from sipctl.entry import main; "
        f"sys.argv = ['sipctl', 'render', '-f', {str(EXAMPLE)!r}, '--dir', {str(tmp_path)!r}]; "
        "main()"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocked], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'sipctl[cards]'" in result.stderr
    assert sorted(p.name for p in (tmp_path / "cards").iterdir()) == sorted(
        f"{name}.vcf" for name in NAMES
    )


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=90
).filter(lambda t: t.strip() == t and t.strip())


@settings(max_examples=examples(150), deadline=None)
@given(shown=_TEXT, organization=_TEXT)
def test_any_display_name_survives_the_vcard(shown: str, organization: str) -> None:
    """Commas, semicolons, backslashes, long and multi-byte names: a vCard parser reads back
    exactly what the spec said (RFC 6350 escaping and 75-octet folding)."""
    import json

    text = (
        "version: 1\ndomain: mysite.ru\nusers:\n  director: 105\n"
        f"cards:\n  organization: {json.dumps(organization)}\n"
        f"  names: {{director: {json.dumps(shown)}}}\n"
    )
    try:
        spec = load_spec_text(text).spec
    except SpecError:  # a value the loader refuses (a line break of another kind) is fine
        return
    raw = vcard(spec, "director")
    assert all(len(line.encode()) <= 75 for line in raw.split("\r\n"))
    card = vobject.readOne(raw)
    assert card.fn.value == shown
    assert ";".join(card.org.value) == organization


def test_cards_of_a_spec_without_the_cards_section_show_the_names() -> None:
    spec = load_spec_text("version: 1\ndomain: mysite.ru\nusers:\n  Director: 105\n").spec
    files = card_files(spec)
    assert sorted(files) == ["director.png", "director.svg", "director.vcf", "index.html"]
    card = vobject.readOne(files["director.vcf"].decode())
    assert card.fn.value == "Director" and card.impp.value == "sip:Director@mysite.ru"
    assert not hasattr(card, "org")
    assert _decode(Image.open(io.BytesIO(files["director.png"]))) == ["sip:Director@mysite.ru"]


IDN = "xn--e1afmkfd.xn--p1ai"  # пример.рф


def test_an_international_domain_reads_in_unicode_and_links_in_ascii(tmp_path: Path) -> None:
    """People read the cards' page (its title, each address shown) with the domain in its
    Unicode form; the links, the vCards' addresses and the QR codes keep the ASCII form,
    which SIP and DNS need."""
    spec = tmp_path / "idn.yaml"
    spec.write_text(EXAMPLE.read_text().replace("mysite.ru", IDN))
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["render", "-f", str(spec), "--dir", str(out)])
    assert result.exit_code == 0, result.output
    index = (out / "cards" / "index.html").read_text()
    assert "<title>Business cards of пример.рф</title>" in index
    assert '<a href="sip:director@xn--e1afmkfd.xn--p1ai">sip:director@пример.рф</a>' in index
    assert 'alt="QR code of sip:director@пример.рф"' in index
    card = vobject.readOne((out / "cards" / "director.vcf").read_text())
    assert card.impp.value == card.tel.value == f"sip:director@{IDN}"
    assert _decode(Image.open(out / "cards" / "director.png")) == [f"sip:director@{IDN}"]


_LABEL = st.text(st.characters(categories=["Ll", "Lo"]), min_size=1, max_size=10)


@settings(max_examples=examples(200), deadline=None)
@given(
    labels=st.lists(
        st.one_of(_LABEL, st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True)), min_size=2, max_size=4
    )
)
def test_the_domain_as_a_person_reads_it_is_the_name_its_ascii_form_spells(
    labels: list[str],
) -> None:
    """Python's own IDNA codec spells a name; display_domain reads that spelling back to the
    name, and leaves a name without an international label (every example's) as it is."""
    try:
        ascii_form = ".".join(label.encode("idna").decode("ascii") for label in labels)
        name = ascii_form.encode("ascii").decode("idna")
    except UnicodeError:
        return  # not a name IDNA can write
    assert display_domain(ascii_form) == name
    plain = ".".join(label for label in labels if label.isascii())
    assert display_domain(plain) == plain
    assert display_domain("xn--zz-.example") == "xn--zz-.example"  # no IDNA label: as it is
