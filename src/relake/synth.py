"""Synthetic LAION-5B-like metadata: parquet shards that look, type and misbehave like the real thing.

``synth_original`` writes ``part-NNNNN-<uuid>-c000.snappy.parquet`` shards with LAION's columns and arrow
types, including its row key ``hash = mmh3.hash64(URL + TEXT)[0]``. Everything derives from ``seed``: the
same arguments give byte-identical files, whatever the machine's core count.

How it stays fast (about a million rows a second on two cores): per seed, a vocabulary of string pools
is built once (domain heads, path middles, tails with query strings, caption bodies and suffixes); each
row is then a few pool indices joined column-wise by pyarrow, plus a random token (ids, hashes, digits)
written straight into an arrow buffer. Rows are made in chunks of ``ROW_GROUP_ROWS``, each seeded from
``(seed, shard, chunk)``, by two worker threads (numpy and arrow release the GIL) while the calling thread
writes finished chunks in order, one row group each.

Realism later stages are tested against: URLs over a Zipf-like spread of a few thousand domains, each
with its own path style (WordPress uploads, product-image ids, photo ids, CDN hashes, shop catalogues,
plain folders) and some query strings; about 1.5% of rows reuse an earlier URL with another caption;
about 0.1% NULL and 0.1% empty captions; about 0.5% odd-but-valid URLs (IDN hosts, mixed-case
percent-escapes, upper-case scheme/host, explicit ports, fragments); captions in several genres and
languages, some with emoji; safety scores with a long tail.
"""

from __future__ import annotations

import functools
import operator
import os
import re
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar

import mmh3
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from relake.errors import InputError
from relake.report import Report, json_meta, rounded

__all__ = ["ROW_GROUP_ROWS", "SCHEMA", "shard_name", "synth_original"]

SCHEMA = pa.schema(
    [
        ("SAMPLE_ID", pa.int64()),
        ("URL", pa.string()),
        ("TEXT", pa.string()),
        ("HEIGHT", pa.int32()),
        ("WIDTH", pa.int32()),
        ("LICENSE", pa.string()),
        ("NSFW", pa.string()),
        ("similarity", pa.float64()),
        ("punsafe", pa.float32()),
        ("pwatermark", pa.float32()),
        ("hash", pa.int64()),
    ]
)
ROW_GROUP_ROWS = 100_000  # one generated chunk = one parquet row group
_DICTIONARY_COLUMNS = ["HEIGHT", "WIDTH", "LICENSE", "NSFW"]  # the rest would only waste time trying
_WORKERS = 2
_LOOKAHEAD = 4  # chunks generated ahead of the writer

# Rates (fractions of rows) of the deliberate oddities.
P_REPEAT_URL = 0.015
P_NULL_TEXT = 0.001
P_EMPTY_TEXT = 0.001
P_ODD_URL = 0.005
P_QUERY = 0.08
P_CAPTION_SUFFIX = 0.35

# Pool sizes.
N_DOMAINS = 3000
HEADS_PER_DOMAIN = 16
MIDS_PER_STYLE = 4096
TAILS_PER_STYLE = 512
CAPTION_BODIES = 32768
CAPTION_SUFFIXES = 4096

IntArray = npt.NDArray[np.int64]
Int32Array = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]

# ---------------------------------------------------------------------------------------------------------
# Word lists
# ---------------------------------------------------------------------------------------------------------

_SYLLABLES = (
    "foto", "pix", "nova", "blue", "shop", "mart", "snap", "image", "home", "style", "deco", "bild", "welt",
    "city", "green", "sun", "star", "moda", "casa", "art", "print", "best", "deal", "fresh", "urban", "photo",
    "gallery", "kraft", "design", "living", "travel", "food", "pet", "kids", "life", "daily", "pixel", "lens",
    "studio", "media", "press", "news", "wall", "paper", "north", "maple", "cedar", "river", "stone", "gold",
    "silver", "nord", "hana", "sakura", "viva", "bella", "terra", "luna", "sol", "ocean", "alpine", "retro",
)
_SUBDOMAINS = (
    ("", 30), ("www.", 25), ("cdn.", 10), ("img.", 8), ("images.", 6), ("static.", 5), ("media.", 5),
    ("i.", 3), ("assets.", 3), ("photos.", 2), ("cdn2.", 1), ("s3.", 1), ("content.", 1),
)
_TLDS = (
    (".com", 50), (".net", 7), (".org", 5), (".de", 8), (".co.uk", 5), (".fr", 4), (".jp", 3), (".com.au", 2),
    (".ru", 3), (".it", 2), (".es", 2), (".nl", 2), (".pl", 2), (".com.br", 2), (".ca", 2), (".info", 1),
    (".io", 1), (".cn", 1),
)
_IDN_HOSTS = (
    "bücher.example.de", "münchen-fotos.de", "café-paris.fr", "пример.рф", "фото-галерея.рф", "日本語.jp",
    "写真.example.jp", "中文网.cn", "señal.es", "straße-bilder.de", "θέα.gr", "søk.no",
)
_PCT_ESCAPES = (
    "%7Euser-", "%7euser-", "caf%C3%A9-", "caf%c3%a9-", "caf%c3%A9-", "a%2fb-", "a%2Fb-", "%20photo-",
    "na%C3%AFve-", "%E2%9C%93-", "100%25-", "%41%42%43-",
)
_FRAGMENTS = ("#main", "#gallery-1", "#image", "#top", "#!", "#slide=3", "#")
_SCHEMES_UPPER = {"http://": ("HTTP://", "Http://"), "https://": ("HTTPS://", "Https://", "hTTps://")}

# path styles, chosen per domain
_WORDPRESS, _PRODUCT_ID, _PHOTO_ID, _CDN_HASH, _CATALOG, _GENERIC = range(6)
_STYLE_WEIGHTS = (30, 10, 12, 18, 10, 20)

_SLUG_WORDS = (
    "red", "blue", "black", "white", "summer", "winter", "dress", "women", "men", "kids", "wedding", "party",
    "vintage", "modern", "kitchen", "living", "room", "bedroom", "garden", "house", "interior", "design",
    "ideas", "diy", "easy", "recipe", "chocolate", "cake", "chicken", "salad", "travel", "beach", "mountain",
    "city", "night", "sunset", "dog", "cat", "puppy", "flower", "rose", "tattoo", "hair", "nails", "makeup",
    "shoes", "boots", "bag", "leather", "cotton", "wood", "table", "chair", "sofa", "lamp", "wall", "art",
    "print", "poster", "canvas", "logo", "icon", "vector", "illustration", "background", "wallpaper", "hd",
    "christmas", "halloween", "birthday", "gift", "card", "2018", "2019", "2020", "2021", "new", "best", "top",
    "10", "cute", "funny", "baby", "girl", "boy", "outfit", "style", "fashion", "street", "car", "bike",
)
_EXTS = (".jpg", ".jpg", ".jpg", ".jpg", ".jpeg", ".png", ".png", ".webp", ".JPG", ".gif")
_QUERIES_FIXED = (
    "?v=3", "?v=1", "?ssl=1", "?quality=80&strip=all", "?format=jpg&name=large", "?fit=crop", "?impolicy=large",
    "?width=1200", "?auto=compress&cs=tinysrgb&dpr=1", "?itok=", "?v=",
)
_IMAGE_ID = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_HEX = b"0123456789abcdef"

_COMMON_SIZES = (
    (640, 480), (800, 600), (1024, 768), (1280, 720), (1920, 1080), (500, 500), (1000, 1000), (600, 400),
    (1200, 800), (400, 600), (736, 1104), (1500, 1500), (3000, 2000), (2048, 1365), (300, 450), (1080, 1350),
    (512, 512), (750, 500), (960, 640), (2560, 1440), (4096, 2304), (256, 256),
)
_ASPECTS = (1.0, 4 / 3, 3 / 4, 3 / 2, 2 / 3, 16 / 9, 9 / 16, 2.0, 0.5)

_LICENSES = ("by-nc-sa", "by", "by-sa", "by-nc", "by-nc-nd", "by-nd", "cc0", "publicdomain")

# caption genres
_G_PRODUCT, _G_PHOTO, _G_FOREIGN, _G_LONG, _G_FILENAME = range(5)
_GENRE_WEIGHTS = (38, 32, 14, 8, 8)

_BRANDS = (
    "Nordica", "Velora", "Kasumi", "Brightway", "Ostara", "Lumen & Co", "Hartwell", "Zephyr", "Marlowe",
    "Tessaro", "Aurelio", "Kinfolk", "Bramble", "Halcyon", "Arden", "Solstice", "Wrenfield", "Oakhurst",
)
_ADJECTIVES = (
    "Vintage", "Modern", "Classic", "Handmade", "Elegant", "Casual", "Luxury", "Rustic", "Minimalist",
    "Oversized", "Slim Fit", "Waterproof", "Portable", "Wireless", "Adjustable", "Personalized", "Boho",
    "Retro", "Premium", "Cute", "Large", "Mini", "Foldable", "Organic", "Scandinavian", "Mid-Century",
)
_COLORS = (
    "Red", "Black", "White", "Navy Blue", "Grey", "Beige", "Pink", "Olive Green", "Mustard Yellow", "Burgundy",
    "Teal", "Gold", "Silver", "Rose Gold", "Ivory", "Brown", "Charcoal", "Lavender", "Emerald",
)
_MATERIALS = (
    "Leather", "Cotton", "Linen", "Wool", "Ceramic", "Wooden", "Stainless Steel", "Glass", "Silk", "Velvet",
    "Bamboo", "Marble", "Canvas", "Denim", "Cast Iron", "Crochet", "Sterling Silver",
)
_PRODUCTS = (
    "Dress", "Ankle Boots", "Sneakers", "Backpack", "Coffee Table", "Table Lamp", "Throw Pillow",
    "Wall Art Print", "Necklace", "Earrings", "Watch", "Sofa", "Dining Chair", "Mug", "Phone Case", "T-Shirt",
    "Hoodie", "Jacket", "Tote Bag", "Area Rug", "Planter", "Bookshelf", "Headphones", "Bedding Set",
    "Curtains", "Sunglasses", "Ring", "Handbag", "Kitchen Knife Set", "Desk Organizer", "Maxi Skirt",
    "Wedding Invitation", "Poster", "Baby Romper", "Dog Collar", "Candle Holder",
)
_AUDIENCES = (
    " for Women", " for Men", " for Kids", " for Girls", " for Boys", " for Living Room", " for Bedroom",
    " for Kitchen", " for Home Office", " for Wedding", " for Christmas", " for Dogs", " for Her", " for Him",
)
_PRODUCT_TAILS = (
    " - Size M", " | Free Shipping", " (Set of 2)", " 2019 New Arrival", " on Sale", " XL", " - 12 Colors",
    " | Buy Online", " 100x150 cm", " &amp; More", " – Limited Edition", ", Size 38", " (Pack of 3)",
)
_PHOTO_LEADS = (
    "A ", "The ", "Beautiful ", "Aerial view of ", "Close-up of ", "View of ", "Portrait of a ", "Photo of ",
    "Sunset over ", "Old ", "Two ", "Happy ", "Abstract ",
)
_SUBJECTS = (
    "mountain lake", "city skyline", "golden retriever", "young woman", "old man", "street market",
    "wedding couple", "red fox", "coffee cup", "vintage car", "sailing boat", "lighthouse", "forest path",
    "snowy village", "cherry blossoms", "family picnic", "skateboarder", "tabby cat", "bowl of ramen",
    "modern kitchen", "wooden cabin", "hot air balloons", "waterfall", "bride and groom", "football player",
    "desert road", "autumn leaves", "birthday cake", "living room interior", "neon sign",
)
_PLACES = (
    " in Paris", " in the mountains", " at night", " on the beach", " in autumn", " in New York City",
    " near Lake Como", " in the rain", " at sunrise", " in Tokyo", " on a wooden table", " in the garden",
    " under the stars", " in winter", " in Iceland", " on white background", " in the studio",
)
_PHOTO_TAILS = (
    ". Stock photo", " - stock photo", " royalty free image", " | Free Photo", " wallpaper", " HD wallpaper",
    " #travel #photography", " 4K", " - Image ID 2B7X9K1", " (editorial use only)", "...",
)
_FOREIGN_PHRASES = (
    ("de", ("Rotes Sommerkleid für Damen", "Günstige Möbel für das Wohnzimmer", "Schöne Aussicht über München",
            "Größe 38", "Holztisch aus Eiche", "Weiße Tasse mit Blumenmuster", "Kostenloser Versand")),
    ("fr", ("Robe d'été à fleurs", "Café crème sur la terrasse", "Château de la Loire au coucher du soleil",
            "Décoration de Noël fait main", "Crème brûlée maison", "Livraison gratuite")),
    ("es", ("Vestido rojo de niña", "Playa de Málaga en verano", "Zapatos de cuero para hombre",
            "Cocina moderna con isla", "Envío gratis")),
    ("it", ("Borsa in pelle fatta a mano", "Tramonto sul lago di Garda", "Città vecchia")),
    ("pt", ("Decoração de sala de estar", "Bolo de chocolate com morangos", "Promoção")),
    ("ja", ("東京タワーの夜景", "かわいい猫の写真", "レディース 夏 ワンピース", "和風 インテリア", "送料無料")),
    ("zh", ("红色连衣裙 女 夏季", "北京故宫的雪景", "简约现代客厅装修效果图", "包邮")),
    ("ko", ("여름 원피스", "서울 야경", "무료 배송")),
    ("ru", ("Красное платье для девочки", "Зимний пейзаж в деревне", "Купить недорого")),
    ("pl", ("Żółta sukienka na lato", "Dom z ogrodem")),
    ("tr", ("Kadın deri çanta", "İstanbul'da gün batımı")),
    ("vi", ("Áo dài truyền thống", "Phở bò Hà Nội")),
)
_FOREIGN_LANG_WEIGHTS = (20, 16, 14, 6, 6, 12, 10, 4, 6, 2, 2, 2)
_LONG_WORDS = (
    "the", "a", "of", "and", "with", "in", "on", "for", "to", "is", "this", "beautiful", "photo", "image",
    "design", "home", "new", "best", "style", "ideas", "made", "from", "high", "quality", "perfect", "your",
    "our", "color", "size", "available", "room", "garden", "summer", "winter", "light", "dark", "small",
    "large", "black", "white", "wood", "hand", "painted", "vintage", "modern", "classic", "gift", "love",
    "family", "day", "night", "city", "view", "water", "sky", "tree", "flowers", "food", "easy", "recipe",
    "women", "men", "kids", "dress", "shirt", "shoes", "table", "chair", "wall", "art", "print", "canvas",
)
_FILENAME_PREFIXES = ("IMG_", "DSC_", "DSCN", "P10", "image-", "photo_", "IMG-2019", "Screenshot_", "thumb_")
_FILENAME_EXTS = ("", "", ".jpg", ".JPG", ".png")
_PLAIN_CAPTIONS = (
    "image", "photo", "untitled", "Home", "thumbnail", "Product Image", "Click to enlarge", "No description",
    "Loading...", "1", "logo", "banner",
)
_EMOJI = ("😍", "❤️", "🔥", "✨", "🌸", "👗", "🎄", "😂", "👍", "🐶", "☀️", "🍕")


_DIGITS = b"0123456789"
_LOWER_ALNUM = b"abcdefghijklmnopqrstuvwxyz0123456789"
_UPPER_ALNUM = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
# per path style: directories after the host, and the random token's alphabet and length range
_STYLE_DIRS: dict[int, tuple[str, ...]] = {
    _PRODUCT_ID: ("/images/I/", "/images/I/", "/images/I/", "/images/G/01/", "/img/p/"),
    _PHOTO_ID: ("/photos/", "/photo/", "/stock-photo/", "/pictures/", "/image/"),
    _CDN_HASH: ("/736x/", "/236x/", "/474x/", "/originals/", "/1200x/", "/uploads/", "/media/", "/thumbs/"),
    _CATALOG: (
        "/media/catalog/product/", "/media/catalog/product/cache/1/image/",
        "/media/catalog/product/cache/small_image/300x/",
    ),
    _GENERIC: (
        "/images/", "/uploads/", "/img/", "/files/", "/assets/images/", "/content/images/", "/static/media/",
        "/pics/",
    ),
}
_GENERIC_SUBDIRS = ("products/", "gallery/", "blog/", "2020/", "large/", "thumbs/", "news/", "slider/")
_TOKENS: dict[int, tuple[bytes, int, int]] = {
    _WORDPRESS: (_DIGITS, 3, 9),
    _PRODUCT_ID: (_IMAGE_ID, 9, 9),
    _PHOTO_ID: (_DIGITS, 6, 9),
    _CDN_HASH: (_HEX, 32, 32),
    _CATALOG: (_UPPER_ALNUM, 5, 8),
    _GENERIC: (_LOWER_ALNUM, 4, 10),
}
_WP_NAMES = ("IMG_", "DSC_0", "IMG-20", "photo-", "image-", "Screen-Shot-2019-")
_WP_SIZES = ("", "", "", "", "-1024x683", "-300x200", "-768x512", "-scaled", "-150x150", "-1", "-2")
_PRODUCT_SUFFIXES = ("", "", "._AC_SL1500_", "._AC_UX679_", "._SX425_", "._SL1000_", "._AC_UL320_")
_SUFFIX_EXTRAS = (
    " 2", " (2)", " - 2019", " #4521", " Size 38", " | Shop Now", " - Page 3", " 1080p", " [HD]", " – 50% off",
)


@functools.cache
def _arr(words: tuple[str, ...]) -> Any:
    """The words as an arrow string array, with one extra trailing '' (the 'absent' choice)."""
    return pa.array([*words, ""], type=pa.string())


def _weights(pairs: Sequence[tuple[str, int]] | Sequence[int]) -> FloatArray:
    w = np.array([p[1] if isinstance(p, tuple) else p for p in pairs], dtype=np.float64)
    total: float = w.sum()
    return w / total


# ---------------------------------------------------------------------------------------------------------
# Column-wise string building
# ---------------------------------------------------------------------------------------------------------


def _pick(rng: np.random.Generator, words: tuple[str, ...], m: int, p_empty: float = 0.0) -> Any:
    """m words drawn uniformly, each replaced by '' with probability p_empty."""
    idx = rng.integers(0, len(words), size=m)
    if p_empty:
        idx[rng.random(m) < p_empty] = len(words)
    return _arr(words).take(idx)


def _concat(*parts: Any) -> Any:
    return pc.binary_join_element_wise(*parts, "")


def _maybe(rng: np.random.Generator, p: float, values: Any) -> Any:
    """values where a coin with probability p says so, else ''."""
    return pc.if_else(pa.array(rng.random(len(values)) < p), values, "")


def _capitalize(values: Any) -> Any:
    """Upper-case the first letter only (arrow's utf8_capitalize also lower-cases the rest)."""
    head = pc.utf8_upper(pc.utf8_slice_codeunits(values, 0, 1))
    return _concat(head, pc.utf8_slice_codeunits(values, 1))


def _digits(values: npt.NDArray[Any], width: int = 0) -> Any:
    s = pc.cast(pa.array(values), pa.string())
    return pc.utf8_lpad(s, width, padding="0") if width else s


def _random_strings(rng: np.random.Generator, lengths: IntArray, alphabet: bytes) -> Any:
    """One random string per length over an ASCII alphabet, built straight into arrow buffers."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    codes = rng.integers(0, len(alphabet), size=int(offsets[-1]), dtype=np.uint8)
    data = np.frombuffer(alphabet, dtype=np.uint8)[codes]
    return pa.StringArray.from_buffers(len(lengths), pa.py_buffer(offsets), pa.py_buffer(data))


def _join_words(rng: np.random.Generator, words: tuple[str, ...], counts: IntArray, sep: str) -> Any:
    """Per row, counts[i] words drawn (skewed towards the front of the list) joined by sep."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int32)
    np.cumsum(counts, out=offsets[1:])
    u = rng.random(int(offsets[-1]))
    idx = (u * u * len(words)).astype(np.int64)
    lists = pa.ListArray.from_arrays(pa.array(offsets), _arr(words).take(idx))
    return pc.binary_join(lists, sep)


def _slugs(rng: np.random.Generator, m: int, lo: int = 2, hi: int = 6) -> Any:
    return _join_words(rng, _SLUG_WORDS, rng.integers(lo, hi, size=m), "-")


def _scatter(pieces: list[tuple[IntArray, Any]], m: int) -> Any:
    """Reassemble per-subset arrays (row indices, values) into one array of m rows."""
    order = np.concatenate([ix for ix, _ in pieces])
    inverse = np.empty(m, dtype=np.int64)
    inverse[order] = np.arange(m, dtype=np.int64)
    return pa.concat_arrays([a for _, a in pieces]).take(inverse)


def _groups(labels: IntArray, n_labels: int) -> list[tuple[int, IntArray]]:
    order = np.argsort(labels, kind="stable")
    bounds = np.searchsorted(labels[order], np.arange(n_labels + 1))
    return [(g, order[bounds[g] : bounds[g + 1]]) for g in range(n_labels) if bounds[g + 1] > bounds[g]]


# ---------------------------------------------------------------------------------------------------------
# The per-seed vocabulary: string pools every chunk draws from
# ---------------------------------------------------------------------------------------------------------


def _dirs(rng: np.random.Generator, style: int, k: int) -> Any:
    """k directory prefixes (after the host) for domains of one path style."""
    if style == _WORDPRESS:
        multisite = _maybe(rng, 0.1, _concat("sites/", _digits(rng.integers(2, 30, size=k)), "/"))
        return _concat(
            "/wp-content/uploads/", multisite, _digits(rng.integers(2010, 2024, size=k)), "/",
            _digits(rng.integers(1, 13, size=k), 2), "/",
        )
    dirs = _pick(rng, _STYLE_DIRS[style], k)
    if style == _GENERIC:
        return _concat(dirs, _pick(rng, _GENERIC_SUBDIRS, k, p_empty=0.5))
    return dirs


def _mids(rng: np.random.Generator, style: int, k: int) -> Any:
    """k file-name beginnings (before the random token) for one path style."""
    if style == _WORDPRESS:
        return pc.if_else(pa.array(rng.random(k) < 0.8), _concat(_slugs(rng, k), "-"), _pick(rng, _WP_NAMES, k))
    if style == _PRODUCT_ID:
        return _digits(rng.integers(41, 92, size=k))
    if style == _PHOTO_ID:
        return _maybe(rng, 0.4, _concat(_slugs(rng, k), "-"))
    if style == _CDN_HASH:
        h = _random_strings(rng, np.full(k, 6, dtype=np.int64), _HEX)
        nested = _concat(*(x for i in range(3) for x in (pc.utf8_slice_codeunits(h, 2 * i, 2 * i + 2), "/")))
        return _maybe(rng, 0.7, nested)
    if style == _CATALOG:
        slug = _slugs(rng, k, 2, 5)
        first, second = pc.utf8_slice_codeunits(slug, 0, 1), pc.utf8_slice_codeunits(slug, 1, 2)
        return _concat(first, "/", second, "/", slug, "-")
    return _concat(_slugs(rng, k), _pick(rng, ("_", "-"), k))


def _queries(rng: np.random.Generator, k: int) -> Any:
    wh = np.array(_COMMON_SIZES, dtype=np.int64)[rng.integers(0, len(_COMMON_SIZES), size=k)]
    width, height = _digits(wh[:, 0]), _digits(wh[:, 1])
    kind = rng.integers(0, 4, size=k)
    fixed = _pick(rng, _QUERIES_FIXED, k)
    token = _random_strings(rng, rng.integers(4, 11, size=k), _IMAGE_ID)
    fixed = pc.if_else(pc.ends_with(fixed, "="), _concat(fixed, token), fixed)
    out = pc.if_else(pa.array(kind == 0), _concat("?w=", width, "&h=", height), fixed)
    return pc.if_else(pa.array(kind == 1), _concat("?resize=", width, "%2C", height, "&ssl=1"), out)


def _tails(rng: np.random.Generator, style: int, k: int) -> Any:
    """k file-name endings (after the random token), some with a query string, for one path style."""
    ext = _pick(rng, _EXTS, k)
    if style == _WORDPRESS:
        end = _concat(_pick(rng, _WP_SIZES, k), ext)
    elif style == _PRODUCT_ID:
        end = _concat(_pick(rng, _PRODUCT_SUFFIXES, k), ".jpg")
    elif style == _PHOTO_ID:
        end = _concat(_maybe(rng, 0.5, _concat("/", _slugs(rng, k))), ext)
    else:
        end = ext
    return _concat(end, _maybe(rng, P_QUERY, _queries(rng, k)))


def _caption_bodies(rng: np.random.Generator, m: int) -> Any:
    genre = rng.choice(len(_GENRE_WEIGHTS), size=m, p=_weights(_GENRE_WEIGHTS)).astype(np.int64)
    pieces: list[tuple[IntArray, Any]] = []
    for g, ix in _groups(genre, len(_GENRE_WEIGHTS)):
        k = len(ix)
        if g == _G_PRODUCT:
            text = _concat(
                _maybe(rng, 0.4, _concat(_pick(rng, _BRANDS, k), " ")),
                _maybe(rng, 0.7, _concat(_pick(rng, _ADJECTIVES, k), " ")),
                _maybe(rng, 0.6, _concat(_pick(rng, _COLORS, k), " ")),
                _maybe(rng, 0.5, _concat(_pick(rng, _MATERIALS, k), " ")),
                _pick(rng, _PRODUCTS, k),
                _pick(rng, _AUDIENCES, k, p_empty=0.6),
                _pick(rng, _PRODUCT_TAILS, k, p_empty=0.7),
            )
        elif g == _G_PHOTO:
            text = _concat(
                _pick(rng, _PHOTO_LEADS, k, p_empty=0.3), _pick(rng, _SUBJECTS, k),
                _pick(rng, _PLACES, k, p_empty=0.3), _pick(rng, _PHOTO_TAILS, k, p_empty=0.75),
            )
            text = pc.if_else(pa.array(rng.random(k) < 0.8), _capitalize(text), text)
        elif g == _G_FOREIGN:
            langs = rng.choice(len(_FOREIGN_PHRASES), size=k, p=_weights(_FOREIGN_LANG_WEIGHTS))
            sizes = np.array([len(p) for _, p in _FOREIGN_PHRASES], dtype=np.int64)
            starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            phrases = tuple(p for _, ps in _FOREIGN_PHRASES for p in ps)
            first = (rng.random(k) * sizes[langs]).astype(np.int64)
            other = 1 + (rng.random(k) * (sizes[langs] - 1)).astype(np.int64)
            second = starts[langs] + (first + other) % sizes[langs]  # a different phrase, same language
            first += starts[langs]
            two = rng.random(k) < 0.5
            second[~two] = len(phrases)  # the trailing ''
            table = _arr(phrases)
            text = _concat(table.take(first), pc.if_else(pa.array(two), " ", ""), table.take(second))
        elif g == _G_LONG:
            text = _capitalize(_join_words(rng, _LONG_WORDS, rng.integers(12, 50, size=k), " "))
        else:
            number = _digits(rng.integers(0, 10_000, size=k), 4)
            name = _concat(_pick(rng, _FILENAME_PREFIXES, k), number, _pick(rng, _FILENAME_EXTS, k))
            text = pc.if_else(pa.array(rng.random(k) < 0.6), name, _pick(rng, _PLAIN_CAPTIONS, k))
        pieces.append((ix, text))
    return _scatter(pieces, m)


def _caption_suffixes(rng: np.random.Generator, m: int) -> Any:
    """Entry 0 is ''; the rest are tails, numbers and emoji appended to a caption body."""
    tails = _pick(rng, _PRODUCT_TAILS + _PHOTO_TAILS + _SUFFIX_EXTRAS, m - 1, p_empty=0.3)
    emoji = _maybe(rng, 0.4, _concat(" ", _pick(rng, _EMOJI, m - 1)))
    return pa.concat_arrays([pa.array([""], type=pa.string()), _concat(tails, emoji)])


@dataclass(frozen=True)
class _Vocab:
    host_lookup: npt.NDArray[np.int16]  # domain at each 2**-20 quantile of a Zipf-like popularity
    host_style: IntArray  # path style of each domain
    heads: Any  # HEADS_PER_DOMAIN x N_DOMAINS "scheme://host/dir/" strings, domain-major
    mids: Any  # MIDS_PER_STYLE per style, style-major
    tails: Any  # TAILS_PER_STYLE per style, style-major
    token_table: npt.NDArray[np.uint8]  # per style, 256 bytes cycling through its token alphabet, flat
    token_min: IntArray
    token_span: IntArray
    bodies: Any  # CAPTION_BODIES captions, then '' and NULL
    suffixes: Any  # CAPTION_SUFFIXES, entry 0 ''
    id_base: int
    job_uuid: str


def _hosts(rng: np.random.Generator) -> list[str]:
    subs = [s for s, _ in _SUBDOMAINS]
    tlds = [t for t, _ in _TLDS]
    hosts: list[str] = []
    seen: set[str] = set()
    while len(hosts) < N_DOMAINS:
        n = 2 * N_DOMAINS
        sub = rng.choice(len(subs), size=n, p=_weights(_SUBDOMAINS)).tolist()
        tld = rng.choice(len(tlds), size=n, p=_weights(_TLDS)).tolist()
        syl = rng.integers(0, len(_SYLLABLES), size=(n, 3)).tolist()
        k = rng.integers(2, 4, size=n).tolist()
        hyphen = (rng.random(n) < 0.15).tolist()
        number = np.where(rng.random(n) < 0.05, rng.integers(1, 100, size=n), 0).tolist()
        for i in range(n):
            name = "".join(_SYLLABLES[j] for j in syl[i][: k[i]])
            if hyphen[i]:
                first = _SYLLABLES[syl[i][0]]
                name = first + "-" + name[len(first) :]
            if number[i]:
                name += str(number[i])
            host = subs[sub[i]] + name + tlds[tld[i]]
            if host not in seen and len(hosts) < N_DOMAINS:
                seen.add(host)
                hosts.append(host)
    return hosts


@functools.lru_cache(maxsize=4)
def _vocab(seed: int) -> _Vocab:
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(0,)))
    hosts = _hosts(rng)
    ranks = np.arange(N_DOMAINS, dtype=np.float64)
    popularity = 1.0 / (ranks + 3.0) ** 1.02
    bounds = np.round(np.cumsum(popularity / popularity.sum()) * (1 << 20)).astype(np.int64)
    bounds[-1] = 1 << 20
    lookup = np.repeat(np.arange(N_DOMAINS, dtype=np.int16), np.diff(bounds, prepend=0))
    n_styles = len(_STYLE_WEIGHTS)
    style = rng.choice(n_styles, size=N_DOMAINS, p=_weights(_STYLE_WEIGHTS)).astype(np.int64)
    scheme = pc.if_else(pa.array(rng.random(N_DOMAINS) < 0.75), "https://", "http://")
    origins = _concat(scheme, pa.array(hosts, type=pa.string()))

    head_domain = np.repeat(np.arange(N_DOMAINS, dtype=np.int64), HEADS_PER_DOMAIN)
    head_style = style[head_domain]
    dirs = _scatter([(ix, _dirs(rng, s, len(ix))) for s, ix in _groups(head_style, n_styles)], len(head_style))
    heads = _concat(origins.take(head_domain), dirs)
    mids = pa.concat_arrays([_mids(rng, s, MIDS_PER_STYLE) for s in range(n_styles)])
    tails = pa.concat_arrays([_tails(rng, s, TAILS_PER_STYLE) for s in range(n_styles)])

    table = np.zeros((n_styles, 256), dtype=np.uint8)
    token_min = np.zeros(n_styles, dtype=np.int64)
    token_span = np.zeros(n_styles, dtype=np.int64)
    for s, (alphabet, lo, hi) in _TOKENS.items():
        table[s] = np.resize(np.frombuffer(alphabet, dtype=np.uint8), 256)
        token_min[s], token_span[s] = lo, hi - lo + 1

    bodies = pa.concat_arrays([_caption_bodies(rng, CAPTION_BODIES), pa.array(["", None], type=pa.string())])
    suffixes = _caption_suffixes(rng, CAPTION_SUFFIXES)
    id_base = int(rng.integers(100_000_000, 2_000_000_000))
    job_uuid = str(uuid.UUID(int=int.from_bytes(rng.bytes(16), "big"), version=4))
    return _Vocab(
        lookup, style, heads, mids, tails, table.ravel(), token_min, token_span, bodies, suffixes, id_base, job_uuid
    )


# ---------------------------------------------------------------------------------------------------------
# Chunks of rows
# ---------------------------------------------------------------------------------------------------------

_URL_PARTS = re.compile(r"(https?://)([^/]+)(.*)", re.DOTALL)


def _odd_url(kind: int, url: str, r: list[int]) -> str:
    """An odd-but-valid variant of url: 0 IDN host, 1 percent-escapes, 2 upper case, 3 port, 4 fragment."""
    match = _URL_PARTS.fullmatch(url)
    if match is None:  # pragma: no cover - every generated URL has a scheme and host
        return url
    scheme, host, rest = match.groups()
    if kind == 0:
        sub = ("", "www.", "img.")[r[0] % 3]
        return f"{scheme}{sub}{_IDN_HOSTS[r[1] % len(_IDN_HOSTS)]}{rest}"
    if kind == 1:
        head, _, name = rest.rpartition("/")
        return f"{scheme}{host}{head}/{_PCT_ESCAPES[r[0] % len(_PCT_ESCAPES)]}{name}"
    if kind == 2:
        labels = host.split(".")
        cased = [lab.upper() if (r[1] >> i) & 1 else lab.capitalize() for i, lab in enumerate(labels)]
        if cased == labels:  # pragma: no cover - capitalize() always changes a lower-case label
            cased[0] = cased[0].upper()
        options = _SCHEMES_UPPER[scheme]
        return f"{options[r[0] % len(options)]}{'.'.join(cased)}{rest}"
    if kind == 3:
        default = ":80" if scheme == "http://" else ":443"
        port = (default, default, ":8080", ":8443", ":3000")[r[0] % 5]
        return f"{scheme}{host}{port}{rest}"
    return f"{scheme}{host}{rest}{_FRAGMENTS[r[0] % len(_FRAGMENTS)]}"


def _tokens(rng: np.random.Generator, vocab: _Vocab, style: IntArray) -> Any:
    """A random token per row over its path style's alphabet (ids, hex hashes, digits)."""
    m = len(style)
    lengths = vocab.token_min[style] + (rng.random(m) * vocab.token_span[style]).astype(np.int64)
    offsets = np.zeros(m + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    total = int(offsets[-1])
    codes = np.frombuffer(rng.bytes(total), dtype=np.uint8)
    row_table = (style * 256).astype(np.uint16)  # where each row's alphabet starts in the flat table
    data = np.take(vocab.token_table, (np.repeat(row_table, lengths) + codes).astype(np.intp))
    return pa.StringArray.from_buffers(m, pa.py_buffer(offsets), pa.py_buffer(data))


def _urls(rng: np.random.Generator, vocab: _Vocab, m: int) -> Any:
    dom = vocab.host_lookup[rng.integers(0, len(vocab.host_lookup), size=m)].astype(np.int64)
    style = vocab.host_style[dom]
    urls = _concat(
        vocab.heads.take(dom * HEADS_PER_DOMAIN + rng.integers(0, HEADS_PER_DOMAIN, size=m)),
        vocab.mids.take(style * MIDS_PER_STYLE + rng.integers(0, MIDS_PER_STYLE, size=m)),
        _tokens(rng, vocab, style),
        vocab.tails.take(style * TAILS_PER_STYLE + rng.integers(0, TAILS_PER_STYLE, size=m)),
    )
    odd = np.flatnonzero(rng.random(m) < P_ODD_URL)
    if len(odd):
        kinds = rng.integers(0, 5, size=len(odd)).tolist()
        rand = rng.integers(0, 1 << 30, size=(len(odd), 2)).tolist()
        originals = urls.take(odd).to_pylist()
        odd_urls = [_odd_url(k, u, r) for k, u, r in zip(kinds, originals, rand, strict=True)]
        mask = np.zeros(m, dtype=np.bool_)
        mask[odd] = True
        urls = pc.replace_with_mask(urls, pa.array(mask), pa.array(odd_urls, type=pa.string()))
    # some rows reuse an earlier row's URL, with their own (different) caption
    repeat = np.flatnonzero(rng.random(m) < P_REPEAT_URL)
    repeat = repeat[repeat > 0]
    if len(repeat):
        source = np.arange(m, dtype=np.int64)
        source[repeat] = (rng.random(len(repeat)) * repeat).astype(np.int64)
        urls = urls.take(source)
    return urls


def _captions(rng: np.random.Generator, vocab: _Vocab, m: int) -> Any:
    body = rng.integers(0, CAPTION_BODIES, size=m)
    suffix = rng.integers(0, CAPTION_SUFFIXES, size=m)
    suffix[rng.random(m) >= P_CAPTION_SUFFIX] = 0
    special = rng.random(m)
    empty = special < P_EMPTY_TEXT
    null = (special >= P_EMPTY_TEXT) & (special < P_EMPTY_TEXT + P_NULL_TEXT)
    body[empty] = CAPTION_BODIES  # ''
    body[null] = CAPTION_BODIES + 1  # NULL, which the join propagates
    suffix[empty | null] = 0
    return _concat(vocab.bodies.take(body), vocab.suffixes.take(suffix))


def _sizes(rng: np.random.Generator, m: int) -> tuple[Int32Array, Int32Array]:
    common = np.array(_COMMON_SIZES, dtype=np.int32)[rng.integers(0, len(_COMMON_SIZES), size=m)]
    width = np.exp(rng.uniform(np.log(256), np.log(4096), size=m))
    aspect = np.array(_ASPECTS)[rng.integers(0, len(_ASPECTS), size=m)] * rng.uniform(0.97, 1.03, size=m)
    free = np.clip(np.stack([width, width / aspect], axis=1), 256, 4096).astype(np.int32)
    wh = np.where((rng.random(m) < 0.55)[:, None], common, free)
    return np.ascontiguousarray(wh[:, 0]), np.ascontiguousarray(wh[:, 1])


def _row_keys(url: Any, text: Any) -> IntArray:
    """LAION's ``hash``: ``mmh3.hash64((URL + TEXT).encode())[0]``, NULL as ''."""
    joined = pc.binary_join_element_wise(url, text, "", null_handling="replace").cast(pa.binary())
    objs = joined.to_numpy(zero_copy_only=False)
    first = operator.itemgetter(0)
    return np.fromiter(map(first, map(mmh3.hash64, objs)), dtype=np.int64, count=len(objs))


_LICENSE_VALUES = pa.array([*_LICENSES, "?"], type=pa.string())
_NSFW_VALUES = pa.array(["UNLIKELY", "UNSURE", "NSFW"], type=pa.string())


def _chunk(seed: int, shard: int, chunk: int, first_row: int, m: int) -> Any:
    """Rows first_row..first_row+m-1 of the dataset (chunk ``chunk`` of shard ``shard``) as a table."""
    vocab = _vocab(seed)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, shard, chunk)))
    width, height = _sizes(rng, m)
    url = _urls(rng, vocab, m)
    text = _captions(rng, vocab, m)
    row_no = first_row + rng.permutation(m).astype(np.int64)
    sample_id = vocab.id_base + 3 * row_no + rng.integers(0, 3, size=m)  # unique: 3 slots per row number
    license_ = np.where(rng.random(m) < 0.96, len(_LICENSES), rng.integers(0, len(_LICENSES), size=m))
    # Kumaraswamy(0.6, 14) is beta-like (mostly ~0.01) and far cheaper to draw; plus a tail above 0.9
    punsafe = (1.0 - (1.0 - rng.random(m)) ** (1 / 14)) ** (1 / 0.6)
    punsafe = np.where(rng.random(m) < 0.015, rng.uniform(0.9, 1.0, size=m), punsafe)
    nsfw_score = punsafe + rng.normal(0.0, 0.12, size=m)
    nsfw = np.where(nsfw_score > 0.75, 2, np.where(nsfw_score > 0.2, 1, 0))
    similarity = rng.triangular(0.28, 0.3, 0.5, size=m)  # LAION-2B-en kept CLIP similarity >= 0.28
    pwatermark = rng.random(m) ** 1.8
    columns = [
        pa.array(sample_id, type=pa.int64()),
        url,
        text,
        pa.array(height, type=pa.int32()),
        pa.array(width, type=pa.int32()),
        _LICENSE_VALUES.take(license_),
        _NSFW_VALUES.take(nsfw),
        pa.array(similarity, type=pa.float64()),
        pa.array(punsafe.astype(np.float32), type=pa.float32()),
        pa.array(pwatermark.astype(np.float32), type=pa.float32()),
        pa.array(_row_keys(url, text), type=pa.int64()),
    ]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


# ---------------------------------------------------------------------------------------------------------
# Shards
# ---------------------------------------------------------------------------------------------------------

_PART = re.compile(r"part-.*\.parquet")


def shard_name(seed: int, index: int) -> str:
    """LAION/Spark-style file name of shard ``index``; the job uuid derives from the seed."""
    return f"part-{index:05d}-{_vocab(seed).job_uuid}-c000.snappy.parquet"


@dataclass(frozen=True)
class _Task:
    shard: int
    chunk: int
    first_row: int
    rows: int
    last: bool  # the shard's final chunk


def _tasks(sizes: list[int]) -> Iterator[_Task]:
    first = 0
    for shard, size in enumerate(sizes):
        n_chunks = max(1, -(-size // ROW_GROUP_ROWS))
        for chunk in range(n_chunks):
            rows = min(ROW_GROUP_ROWS, size - chunk * ROW_GROUP_ROWS)
            yield _Task(shard, chunk, first + chunk * ROW_GROUP_ROWS, rows, chunk == n_chunks - 1)
        first += size


def _create(path: Path) -> IO[bytes]:
    try:
        return open(path, "xb")  # 'x': an existing file is never overwritten
    except FileExistsError:
        raise InputError(f"{path} already exists; synth never overwrites files") from None


@dataclass(frozen=True)
class Synthesised(Report):
    """What ``relake synth`` wrote: ``rows`` rows in the shard files ``paths``, in order."""

    json_computed: ClassVar[tuple[str, ...]] = ("shards",)

    out: Path
    rows: int
    paths: list[Path]
    seconds: float = field(default=0.0, metadata=json_meta(convert=rounded))

    @property
    def shards(self) -> int:
        return len(self.paths)


def synth_report(out: Path, rows: int, shards: int, seed: int,
                 progress: Callable[[int], None] | None = None) -> Synthesised:
    """:func:`synth_original` as a report, timed."""
    start = time.perf_counter()
    paths = synth_original(out, rows, shards, seed, progress)
    return Synthesised(out, rows, paths, time.perf_counter() - start)


def synth_original(
    out: Path, rows: int, shards: int, seed: int, progress: Callable[[int], None] | None = None
) -> list[Path]:
    """Write a LAION-5B-like original of ``rows`` rows as ``shards`` parquet files in folder ``out``.

    Returns the shard paths in order; ``progress(rows_done)`` is called after each shard. Raises
    ``InputError`` for rows < 0, shards < 1, seed < 0, or if ``out`` already holds ``part-*.parquet``
    files. Same arguments, same bytes. On failure the files this call created are removed.
    """
    if rows < 0:
        raise InputError(f"rows must be >= 0, got {rows}")
    if shards < 1:
        raise InputError(f"shards must be >= 1, got {shards}")
    if seed < 0:
        raise InputError(f"seed must be >= 0, got {seed}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    existing = sorted(p.name for p in out.iterdir() if _PART.fullmatch(p.name))
    if existing:
        raise InputError(
            f"{out} already contains {len(existing)} part-*.parquet file(s) (e.g. {existing[0]}); "
            "synth never overwrites, choose an empty folder"
        )
    base, extra = divmod(rows, shards)
    sizes = [base + (1 if i < extra else 0) for i in range(shards)]
    paths = [out / shard_name(seed, i) for i in range(shards)]  # also builds the vocabulary, once

    created: list[Path] = []
    done = 0
    fh: IO[bytes] | None = None
    writer: Any = None
    pending: deque[tuple[_Task, Future[Any]]] = deque()
    tasks = _tasks(sizes)
    with ThreadPoolExecutor(min(_WORKERS, os.cpu_count() or 1), thread_name_prefix="relake-synth") as pool:
        try:
            while True:
                while len(pending) < _LOOKAHEAD and (task := next(tasks, None)) is not None:
                    job = pool.submit(_chunk, seed, task.shard, task.chunk, task.first_row, task.rows)
                    pending.append((task, job))
                if not pending:
                    break
                task, job = pending.popleft()
                table = job.result()
                if writer is None:
                    fh = _create(paths[task.shard])
                    created.append(paths[task.shard])
                    writer = pq.ParquetWriter(
                        fh, SCHEMA, compression="snappy", use_dictionary=_DICTIONARY_COLUMNS
                    )
                writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
                if task.last:
                    writer.close()
                    writer = None
                    assert fh is not None
                    fh.close()
                    done += sizes[task.shard]
                    if progress is not None:
                        progress(done)
        except BaseException:
            for _, job in pending:
                job.cancel()
            if writer is not None:
                writer.close()
            if fh is not None:
                fh.close()
            for path in created:
                path.unlink(missing_ok=True)
            raise
    return paths
