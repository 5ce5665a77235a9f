"""A reproducible synthetic workload of all six event types, with injected alert cases.

Users register, update their profiles, browse in sessions, pay and upload
images; hosts report metrics. A few alert cases are injected on purpose
(metric anomalies and spikes, fraud); everything else stays well clear of the
alert rules, so ``Workload.injected`` is exactly what an alerter should raise
(over-threshold samples are far above their host's baseline too, so a spike
rule may also fire for them; ``injected["metric_spike"]`` lists only the spikes
below the static thresholds).
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from pipelines.consumers.alerts.rules import (
    CARD_TESTING_DECLINES,
    FRAUD_AMOUNT,
    FRAUD_WINDOW_MS,
    RULES,
    THRESHOLDS,
    VELOCITY_MAX_TRANSACTIONS,
)
from pipelines.contract.events import new_event

PRODUCER = "simulator"
DEFAULT_START = datetime(2026, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=3)

# The injected cases are made to trip the alert rules, so they use the rules' own limits.
FRAUD_WINDOW = timedelta(milliseconds=FRAUD_WINDOW_MS)

MIX: tuple[tuple[str, float], ...] = (
    ("UserRegistered", 0.10),
    ("UserProfileUpdated", 0.10),
    ("UserActivityRecorded", 0.25),
    ("TransactionRecorded", 0.20),
    ("ImageLabeled", 0.10),
    ("MetricRecorded", 0.25),
)


@dataclass(frozen=True)
class Workload:
    """Events in production order, and the ids of the events each rule should alert on."""

    events: list[dict[str, Any]]
    injected: dict[str, list[str]]


# --- reference data ----------------------------------------------------------

_T = TypeVar("_T")
_Weighted = tuple[tuple[_T, ...], tuple[int, ...]]  # values, cumulative weights


def _weighted(pairs: Sequence[tuple[_T, int]]) -> _Weighted[_T]:
    return tuple(v for v, _ in pairs), tuple(itertools.accumulate(w for _, w in pairs))


_MIN = 60_000  # ms
_SPAN_MS = int(SPAN.total_seconds() * 1000)
_TX_GAP = 8 * _MIN  # between a user's ordinary transactions
_BURST_GAP = 15 * _MIN  # between a burst and the user's other transactions
_DECLINE_GAP = 60 * _MIN  # between a user's ordinary declines
_SERIES_WARMUP = 30  # samples of a metric series before its anomaly (at most one)

_FIRST = (
    "Ava", "Liam", "Noah", "Emma", "Olivia", "Mateo", "Sofia", "Lucas", "Mia", "Amara",
    "Ethan", "Hana", "Yusuf", "Chloe", "Leon", "Ines", "Kenji", "Zara", "Omar", "Nora",
    "Felix", "Priya", "Jonas", "Lea", "Diego", "Elif", "Sven", "Aisha", "Marco", "Julia",
)  # fmt: skip
_LAST = (
    "Smith", "Garcia", "Müller", "Rossi", "Kim", "Novak", "Silva", "Dubois", "Jansen",
    "Okafor", "Nakamura", "Kowalski", "Larsen", "Haddad", "Patel", "Brown", "Costa",
    "Schmidt", "Ivanova", "Moreau", "Fischer", "Lopez", "Berg", "Singh", "Walsh",
)  # fmt: skip
_DOMAINS = ("example.com", "mail.example", "example.org", "inbox.example", "example.net")
_CURRENCIES = _weighted((("USD", 50), ("EUR", 25), ("GBP", 15), ("CAD", 5), ("AUD", 5)))
_IP_FIRST_OCTETS = (24, 31, 46, 62, 73, 81, 89, 98, 104, 151, 176, 185, 203, 213)

# category -> (merchants, median amount, cap); ordinary amounts stay far below 10,000.
_CATEGORIES: dict[str, tuple[tuple[str, ...], float, float]] = {
    "groceries": (("Whole Foods", "Tesco", "Carrefour", "Aldi", "Kroger"), 55.0, 600.0),
    "dining": (("Starbucks", "Chipotle", "Pret A Manger", "Dishoom", "Nando's"), 22.0, 350.0),
    "electronics": (("Best Buy", "Apple Store", "MediaMarkt", "Currys"), 240.0, 4_500.0),
    "travel": (("Delta Air Lines", "Booking.com", "Uber", "Lufthansa", "Airbnb"), 180.0, 6_000.0),
    "entertainment": (("Netflix", "Spotify", "Steam", "Cineworld"), 15.0, 200.0),
    "fashion": (("Zara", "H&M", "Nike", "Uniqlo"), 70.0, 1_200.0),
    "utilities": (("EDF Energy", "Vodafone", "Comcast", "Thames Water"), 90.0, 800.0),
    "health": (("CVS Pharmacy", "Boots", "dm-drogerie markt"), 30.0, 400.0),
}
_CATEGORY_WEIGHTS = _weighted(tuple(zip(_CATEGORIES, (24, 22, 8, 8, 12, 10, 8, 8), strict=True)))
_SHOPS = ("Amazon", "Etsy", "eBay", "Zalando", "ASOS", "Best Buy Online")
_SHOP_CATEGORIES = ("electronics", "fashion", "home", "books", "toys", "beauty")
_STATUSES = _weighted((("completed", 88), ("pending", 8), ("refunded", 2), ("declined", 2)))

_SCENES: tuple[tuple[str, ...], ...] = (
    ("Beach", "Sea", "Sand", "Person", "Sky", "Sunset", "Water"),
    ("City", "Building", "Street", "Car", "Person", "Road", "Architecture"),
    ("Dog", "Cat", "Pet", "Animal", "Mammal", "Grass", "Puppy"),
    ("Food", "Plate", "Dish", "Pizza", "Drink", "Table", "Meal"),
    ("Electronics", "Phone", "Laptop", "Computer", "Screen", "Desk", "Keyboard"),
    ("Tree", "Mountain", "Forest", "Plant", "Outdoors", "Lake", "Nature"),
    ("Person", "Face", "Smile", "Clothing", "Portrait", "Selfie", "Hair"),
)
_PAGES = ("/", "/search", "/products", "/products/{sku}", "/cart", "/deals", "/account", "/help")
_DEVICES = ("desktop", "mobile", "tablet")
_LOGIN_METHODS = ("password", "password", "sso", "oauth_google", "oauth_apple")
_PREFERENCES: dict[str, tuple[str, ...]] = {
    "theme": ("light", "dark", "system"),
    "language": ("en", "de", "fr", "es", "nl", "ja"),
    "newsletter": ("true", "false"),
    "notifications": ("email", "push", "sms", "none"),
    "currency": ("USD", "EUR", "GBP"),
    "timezone": ("UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"),
}

# metric -> (normal level range, anomaly range above the threshold, decimals, unit)
_METRICS: dict[str, tuple[tuple[float, float], tuple[float, float], int, str]] = {
    "cpu_usage": ((10.0, 55.0), (91.0, 100.0), 2, "percent"),
    "memory_usage": ((30.0, 70.0), (86.5, 99.0), 2, "percent"),
    "disk_usage": ((25.0, 70.0), (91.0, 99.5), 2, "percent"),
    "response_time": ((80.0, 450.0), (5_200.0, 12_000.0), 1, "ms"),
    "error_rate": ((0.1, 1.2), (5.5, 25.0), 3, "percent"),
}
_NOISE = 0.10  # normal samples stay within +-10% of the host's level
_NOISE_BLOCK = 10  # noise is stratified per block, so every short window has a normal spread
_SPIKE_MIN_FACTOR = 3.5  # spikes are at least this many times the host's level
_HOST_ROLES = ("web", "api", "db", "cache", "worker", "search")
_REGIONS = ("eu-west-1", "us-east-1", "ap-southeast-2")


# --- generation ----------------------------------------------------------------


class _Rng(random.Random):
    """``random.Random`` with cheaper integer and choice draws (one ``random()`` each)."""

    def randint(self, a: int, b: int) -> int:
        return a + int(self.random() * (b - a + 1))

    def choice(self, seq: Sequence[_T]) -> _T:  # type: ignore[override]
        return seq[int(self.random() * len(seq))]

    def weighted(self, table: _Weighted[_T]) -> _T:
        """One value of a weighted table, by weight."""
        values, cum = table
        return values[bisect.bisect_right(cum, self.random() * cum[-1])]

    def uuid4(self) -> str:
        """A version-4 UUID from 128 random bits, as ``uuid.UUID(int=..., version=4)``."""
        n = self.getrandbits(128)
        n = (n & ~(0xC000 << 48) | (0x8000 << 48)) & ~(0xF000 << 64) | (4 << 76)
        h = f"{n:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# An item before it becomes an event: (ms, seq, type, body, version, correlation, rule).
_Item = tuple[int, int, str, dict[str, Any], int | None, str | None, str | None]


@dataclass
class _User:
    user_id: str
    name: str
    email: str
    currency: str
    reg_ms: int
    ips: list[str]
    n_activities: int = 0
    n_transactions: int = 0
    n_images: int = 0
    n_updates: int = 0
    bursts: list[tuple[str, int]] = field(default_factory=list)  # (kind, size)
    big_payments: int = 0
    last_decline: int = -(10**12)


class _Sim:
    def __init__(self, seed: int | str) -> None:
        self.rng = _Rng(seed)
        self.items: list[_Item] = []
        self.seq = 0
        self.user_ids: set[str] = set()

    # small helpers

    def uid(self) -> str:
        return self.rng.uuid4()

    def hex(self, digits: int) -> str:
        return f"{self.rng.getrandbits(4 * digits):0{digits}x}"

    def add(
        self,
        ms: int,
        event_type: str,
        body: dict[str, Any],
        version: int | None = None,
        correlation: str | None = None,
        rule: str | None = None,
    ) -> None:
        self.items.append((ms, self.seq, event_type, body, version, correlation, rule))
        self.seq += 1

    def daytime_ms(self, low: int, high: int) -> int:
        """A time in [low, high), busier in the day than at night (UTC)."""
        rng = self.rng
        for _ in range(8):
            ms = rng.randint(low, max(low, high - 1))
            hour = (ms // 3_600_000) % 24
            if rng.random() < 0.25 + 0.75 * (0.5 - 0.5 * math.cos(2 * math.pi * (hour - 4) / 24)):
                return ms
        return ms

    def amount(self, low: float, high: float) -> Decimal:
        cents = self.rng.randint(round(low * 100), round(high * 100))
        return Decimal(cents).scaleb(-2)

    # users

    def new_user(self, reg_ms: int) -> _User:
        rng = self.rng
        user_id = f"user-{self.hex(12)}"
        while user_id in self.user_ids:
            user_id = f"user-{self.hex(12)}"
        self.user_ids.add(user_id)
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        ascii_last = last.replace("ü", "ue").replace("'", "")
        email = f"{first}.{ascii_last}{rng.randint(1, 999)}@{rng.choice(_DOMAINS)}".lower()
        currency = rng.weighted(_CURRENCIES)
        ips = [self.ip() for _ in range(rng.randint(1, 3))]
        return _User(user_id, f"{first} {last}", email, currency, reg_ms, ips)

    def ip(self) -> str:
        r = self.rng
        octets = (
            r.choice(_IP_FIRST_OCTETS),
            r.randint(0, 255),
            r.randint(0, 255),
            r.randint(1, 254),
        )
        return ".".join(map(str, octets))

    def run_user(self, user: _User) -> None:
        """Lay out one user's life: registration, then episodes in time order."""
        rng = self.rng
        version = 1
        self.add(
            user.reg_ms,
            "UserRegistered",
            {"user_id": user.user_id, "email": user.email, "name": user.name},
            version=1,
        )
        # (planned ms, kind, payload)
        episodes: list[tuple[int, str, Any]] = []
        tx_left = user.n_transactions
        acts_left = user.n_activities
        first_session = True
        while acts_left > 0:
            size = min(acts_left, rng.randint(2, 9))
            acts_left -= size
            purchase = size >= 5 and tx_left > 0 and rng.random() < 0.45
            tx_left -= purchase
            if first_session and rng.random() < 0.7:
                planned = user.reg_ms + rng.randint(1 * _MIN, 10 * _MIN)
            else:
                planned = self.daytime_ms(user.reg_ms + _MIN, _SPAN_MS)
            first_session = False
            episodes.append((planned, "session", (size, purchase)))
        for kind, count in (
            ("payment", tx_left),
            ("image", user.n_images),
            ("update", user.n_updates),
            ("big_payment", user.big_payments),
        ):
            for _ in range(count):
                episodes.append((self.daytime_ms(user.reg_ms + _MIN, _SPAN_MS), kind, None))
        for kind, size in user.bursts:
            planned = rng.randint(user.reg_ms + 30 * _MIN, max(user.reg_ms + 30 * _MIN, _SPAN_MS))
            episodes.append((planned, kind, size))
        episodes.sort(key=lambda e: e[0])

        end = user.reg_ms
        last_tx = -(10**12)
        last_tx_burst = False
        images = 0
        for planned, kind, payload in episodes:
            start = max(planned, end + rng.randint(_MIN, 5 * _MIN))
            bursty = kind in ("velocity", "card_testing")
            if kind in ("payment", "big_payment") or bursty or (kind == "session" and payload[1]):
                gap = _BURST_GAP if bursty or last_tx_burst else _TX_GAP
                start = max(start, last_tx + gap)
            if kind == "session":
                end, tx_ms = self.session(user, start, *payload)
                if tx_ms is not None:
                    last_tx, last_tx_burst = tx_ms, False
            elif kind == "payment":
                self.payment(user, start)
                end, last_tx, last_tx_burst = start, start, False
            elif kind == "big_payment":
                self.payment(user, start, big=True)
                end, last_tx, last_tx_burst = start, start, False
            elif kind == "image":
                images += 1
                self.image(user, start, images)
                end = start
            elif kind == "update":
                version += 1
                self.update(user, start, version)
                end = start
            else:
                end = self.burst(user, start, kind, payload)
                last_tx, last_tx_burst = end, True

    def session(self, user: _User, start: int, size: int, purchase: bool) -> tuple[int, int | None]:
        rng = self.rng
        corr = self.uid()
        session_id = f"sess-{self.hex(16)}"
        ip = rng.choice(user.ips)
        kinds = ["login"]
        middle = size - 2
        for i in range(middle):
            if purchase and i == middle - 1:
                kinds.append("purchase")
            elif (purchase and i == middle - 2) or (i > 0 and rng.random() < 0.2):
                kinds.append("add_to_cart")
            else:
                kinds.append("page_view")
        if size >= 2:
            kinds.append("logout" if rng.random() < 0.8 else "page_view")
        device = rng.choice(_DEVICES)
        cart: list[tuple[str, Decimal]] = []
        t = start
        tx_ms = None
        for activity in kinds:
            details: dict[str, str]
            if activity == "login":
                details = {"method": rng.choice(_LOGIN_METHODS), "device": device}
            elif activity == "page_view":
                page = rng.choice(_PAGES).format(sku=rng.randint(10_000, 99_999))
                details = {"page": page, "device": device}
            elif activity == "add_to_cart":
                sku = f"sku-{rng.randint(10_000, 99_999)}"
                price = self.amount(4.99, 180.0)
                quantity = rng.choice((1, 1, 1, 2, 3))
                cart.append((sku, price * quantity))
                details = {"product_id": sku, "quantity": str(quantity), "price": str(price)}
            elif activity == "purchase":
                total = sum((p for _, p in cart), Decimal("0.00"))
                transaction_id = f"txn-{self.hex(16)}"
                details = {
                    "order_id": f"ord-{self.hex(10)}",
                    "transaction_id": transaction_id,
                    "total": str(total),
                    "currency": user.currency,
                    "items": str(len(cart)),
                }
            else:
                details = {"reason": "user"}
            self.add(
                t,
                "UserActivityRecorded",
                {
                    "user_id": user.user_id,
                    "activity_type": activity,
                    "details": details,
                    "session_id": session_id,
                    "ip_address": ip,
                    "session_duration_ms": t - start,
                },
                correlation=corr,
            )
            if activity == "purchase":
                tx_ms = t + rng.randint(200, 3_000)
                self.add(
                    tx_ms,
                    "TransactionRecorded",
                    {
                        "transaction_id": transaction_id,
                        "user_id": user.user_id,
                        "amount": total,
                        "currency": user.currency,
                        "merchant": rng.choice(_SHOPS),
                        "category": rng.choice(_SHOP_CATEGORIES),
                        "status": self.status(user, tx_ms),
                    },
                    correlation=corr,
                )
                t = tx_ms
            t += rng.randint(3_000, 90_000)
        return t, tx_ms

    def status(self, user: _User, ms: int) -> str:
        rng = self.rng
        status = rng.weighted(_STATUSES)
        if status == "declined":
            if ms - user.last_decline <= _DECLINE_GAP:
                return "completed"
            user.last_decline = ms
        return status

    def payment(self, user: _User, ms: int, big: bool = False) -> None:
        rng = self.rng
        currency = user.currency
        if big:
            category = rng.choice(("travel", "electronics", "jewelry"))
            merchant = rng.choice(
                {
                    "travel": ("Emirates", "Four Seasons", "Singapore Airlines"),
                    "electronics": ("Apple Store", "B&H Photo"),
                    "jewelry": ("Cartier", "Rolex Boutique", "Tiffany & Co."),
                }[category]
            )
            amount = self.amount(float(FRAUD_AMOUNT) + 0.01, 48_000.0)
            status = rng.choice(("completed", "completed", "pending"))
            rule: str | None = "fraud_amount"
        else:
            category = rng.weighted(_CATEGORY_WEIGHTS)
            merchants, median, cap = _CATEGORIES[category]
            merchant = rng.choice(merchants)
            value = min(cap, max(0.5, rng.lognormvariate(math.log(median), 0.8)))
            amount = Decimal(round(value * 100)).scaleb(-2)
            if category == "travel" and rng.random() < 0.3:
                currency = rng.choice(("USD", "EUR", "GBP"))
            status = self.status(user, ms)
            rule = None
        self.add(
            ms,
            "TransactionRecorded",
            {
                "transaction_id": f"txn-{self.hex(16)}",
                "user_id": user.user_id,
                "amount": amount,
                "currency": currency,
                "merchant": merchant,
                "category": category,
                "status": status,
            },
            rule=rule,
        )

    def burst(self, user: _User, start: int, kind: str, size: int) -> int:
        """A velocity or card-testing burst; returns the time of its last transaction."""
        rng = self.rng
        corr = self.uid()
        t = start
        if kind == "velocity":
            statuses = ["completed"] * size
            merchant = rng.choice(("Amazon", "Best Buy", "Apple Store", "Walmart"))
        else:
            declines = min(size, rng.randint(CARD_TESTING_DECLINES, CARD_TESTING_DECLINES + 1))
            statuses = ["declined"] * declines + ["completed"] * (size - declines)
            rng.shuffle(statuses)
            merchant = rng.choice(("Steam", "Google Play", "DigitalOcean", "Roblox"))
        declined_seen = 0
        for i, status in enumerate(statuses):
            if i:
                t += (
                    rng.randint(20_000, 70_000)
                    if kind == "velocity"
                    else rng.randint(10_000, 60_000)
                )
            rule = None
            if kind == "velocity":
                amount = self.amount(120.0, 1_500.0)
                category = rng.choice(("electronics", "gift_cards"))
                if i == VELOCITY_MAX_TRANSACTIONS:
                    rule = "fraud_velocity"
            else:
                amount = self.amount(0.5, 5.0)
                category = "digital_goods"
                if status == "declined":
                    declined_seen += 1
                    if declined_seen == CARD_TESTING_DECLINES:
                        rule = "fraud_card_testing"
            self.add(
                t,
                "TransactionRecorded",
                {
                    "transaction_id": f"txn-{self.hex(16)}",
                    "user_id": user.user_id,
                    "amount": amount,
                    "currency": user.currency,
                    "merchant": merchant,
                    "category": category,
                    "status": status,
                },
                correlation=corr,
                rule=rule,
            )
        if kind == "card_testing":
            user.last_decline = t
        return t

    def image(self, user: _User, ms: int, n: int) -> None:
        rng = self.rng
        scene = rng.choice(_SCENES)
        names = rng.sample(scene, rng.randint(1, 5))
        confidences = sorted((round(rng.uniform(50.0, 99.99), 2) for _ in names), reverse=True)
        confidences[0] = max(confidences[0], round(rng.uniform(80.0, 99.99), 2))
        self.add(
            ms,
            "ImageLabeled",
            {
                "bucket": "uploads",
                "key": f"uploads/{user.user_id}/{n}.jpg",
                "labels": [
                    {"name": a, "confidence": c} for a, c in zip(names, confidences, strict=True)
                ],
            },
        )

    def update(self, user: _User, ms: int, version: int) -> None:
        rng = self.rng
        body: dict[str, Any] = {"user_id": user.user_id, "name": None, "email": None, "phone": None}
        body["preferences"] = None
        fields = rng.choices(
            ("preferences", "phone", "email", "name"), (50, 25, 15, 10), k=rng.randint(1, 3)
        )
        for f in dict.fromkeys(fields):
            if f == "preferences":
                keys = rng.sample(list(_PREFERENCES), rng.randint(1, 3))
                body["preferences"] = {k: rng.choice(_PREFERENCES[k]) for k in sorted(keys)}
            elif f == "phone":
                body["phone"] = (
                    f"+{rng.choice((1, 44, 49, 33, 31))}{rng.randint(10**9, 10**10 - 1)}"
                )
            elif f == "email":
                local = user.email.split("@", 1)[0]
                user.email = f"{local}@{rng.choice(_DOMAINS)}"
                body["email"] = user.email
            else:
                first = user.name.split(" ", 1)[0]
                user.name = f"{first} {rng.choice(_LAST)}"
                body["name"] = user.name
        self.add(ms, "UserProfileUpdated", body, version=version)

    # metrics

    def stratified(self, pending: list[float]) -> float:
        """The next of a shuffled block of values, one from each tenth of [0, 1)."""
        if not pending:
            pending.extend((i + self.rng.random()) / _NOISE_BLOCK for i in range(_NOISE_BLOCK))
            self.rng.shuffle(pending)
        return pending.pop()

    def metrics(self, n: int) -> None:
        """``n`` samples from a fleet of hosts, each scraping all five metrics per tick."""
        if n <= 0:
            return
        rng = self.rng
        n_hosts = min(n, max(2, min(24, n // 300)))
        hosts = []
        for i in range(n_hosts):
            role = _HOST_ROLES[i % len(_HOST_ROLES)]
            name = f"{role}-{i // len(_HOST_ROLES) + 1:02d}"
            region = rng.choice(_REGIONS)
            levels = {m: rng.uniform(*spec[0]) for m, spec in _METRICS.items()}
            hosts.append((name, role, region, levels))
        per_host = [n // n_hosts + (i < n % n_hosts) for i in range(n_hosts)]
        names = list(_METRICS)
        # At most one anomaly per series, after a warm-up, so baselines stay clean.
        counts = {
            (h, m): per_host[h] // 5 + (j < per_host[h] % 5)
            for h in range(n_hosts)
            for j, m in enumerate(names)
        }
        free: dict[str, list[int]] = {m: [] for m in names}
        for (h, m), count in counts.items():
            if count > _SERIES_WARMUP:
                free[m].append(h)
        anomalies: dict[tuple[int, str, int], str] = {}

        def place(h: int, m: str, rule: str) -> None:
            anomalies[(h, m, rng.randint(_SERIES_WARMUP, counts[(h, m)] - 1))] = rule

        for m in names:
            rng.shuffle(free[m])
            for _ in range(min(len(free[m]), max(1, n // 1_500))):
                place(free[m].pop(), m, m)
        spikeable = [
            (h, m)
            for m in names
            for h in free[m]
            if hosts[h][3][m] * _SPIKE_MIN_FACTOR < 0.9 * THRESHOLDS[m]
        ]
        rng.shuffle(spikeable)
        for h, m in spikeable[: max(1, n // 300)]:
            place(h, m, "metric_spike")

        for h, (name, role, region, levels) in enumerate(hosts):
            ticks = math.ceil(per_host[h] / 5)
            interval = _SPAN_MS // ticks
            offset = rng.randint(0, max(0, interval - 1))
            emitted = 0
            noise: dict[str, list[float]] = {m: [] for m in names}
            for tick in range(ticks):
                jitter = rng.randint(-interval // 20, interval // 20)
                ms = max(0, offset + tick * interval + jitter)
                corr = self.uid()
                for m in names:
                    if emitted == per_host[h]:
                        break
                    emitted += 1
                    spec = _METRICS[m]
                    rule = anomalies.get((h, m, tick))
                    if rule == m:
                        value = rng.uniform(*spec[1])
                    elif rule == "metric_spike":
                        level = levels[m]
                        top = min(6.0, 0.92 * THRESHOLDS[m] / level)
                        value = level * rng.uniform(_SPIKE_MIN_FACTOR, top)
                    else:
                        value = levels[m] * (1 + _NOISE * (2 * self.stratified(noise[m]) - 1))
                    self.add(
                        ms,
                        "MetricRecorded",
                        {
                            "metric_name": m,
                            "value": round(value, spec[2]),
                            "source": name,
                            "tags": {"role": role, "region": region, "unit": spec[3]},
                        },
                        correlation=corr,
                        rule=rule,
                    )


def _counts(n: int) -> dict[str, int]:
    counts = {t: int(n * f) for t, f in MIX}
    counts["MetricRecorded"] += n - sum(counts.values())
    if n >= len(MIX):
        for t in counts:
            if counts[t] == 0:
                largest = max(counts, key=lambda k: counts[k])
                counts[largest] -= 1
                counts[t] += 1
    if counts["UserRegistered"] == 0:
        for t in (
            "UserProfileUpdated",
            "UserActivityRecorded",
            "TransactionRecorded",
            "ImageLabeled",
        ):
            counts["MetricRecorded"] += counts[t]
            counts[t] = 0
    return counts


def default_start(now: datetime | None = None) -> datetime:
    """Where ``pipeline simulate`` starts event time: today's UTC midnight less :data:`SPAN`.

    The events then end at midnight, never in the future, inside the daily analytics' seven
    days; and the same day gives the same start, so a rerun sends the same events again
    (duplicates, applied once) rather than the same ids with new times.
    """
    today = (now or datetime.now(UTC)).astimezone(UTC)
    return today.replace(hour=0, minute=0, second=0, microsecond=0) - SPAN


def simulate(n_events: int, seed: int, start: datetime | None = None) -> Workload:
    """Exactly ``n_events`` events, the same for the same arguments.

    A workload is named by all three: another ``start`` is another workload, with ids of its
    own, so that simulating another day never reuses an event id for a different event.
    """
    if n_events < 0:
        raise ValueError("n_events must not be negative")
    start = DEFAULT_START if start is None else start
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    start = start.astimezone(UTC).replace(microsecond=start.microsecond // 1000 * 1000)
    counts = _counts(n_events)
    # ``random.Random`` seeds from a string through SHA-512, the same in every process.
    sim = _Sim(seed if start == DEFAULT_START else f"{seed}@{start.isoformat()}")
    rng = sim.rng

    n_users = counts["UserRegistered"]
    users = [sim.new_user(round(_SPAN_MS * 0.7 * rng.random() ** 1.3)) for _ in range(n_users)]
    # Fraud cases, paid for out of the transaction budget.
    n_tx = counts["TransactionRecorded"]
    if users and n_tx >= 60:
        n_bursts = max(1, n_tx // 300)
        n_big = max(1, n_tx // 250)
        for _ in range(n_bursts):
            size = rng.randint(VELOCITY_MAX_TRANSACTIONS + 1, VELOCITY_MAX_TRANSACTIONS + 3)
            rng.choice(users).bursts.append(("velocity", size))
            n_tx -= size
        for _ in range(n_bursts):
            size = rng.randint(CARD_TESTING_DECLINES, VELOCITY_MAX_TRANSACTIONS)
            rng.choice(users).bursts.append(("card_testing", size))
            n_tx -= size
        for _ in range(n_big):
            rng.choice(users).big_payments += 1
            n_tx -= 1
    if users:
        weights = [rng.lognormvariate(0.0, 0.9) for _ in users]
        for attr, budget in (
            ("n_activities", counts["UserActivityRecorded"]),
            ("n_transactions", n_tx),
            ("n_images", counts["ImageLabeled"]),
            ("n_updates", counts["UserProfileUpdated"]),
        ):
            for user in rng.choices(users, weights, k=budget):
                setattr(user, attr, getattr(user, attr) + 1)
    for user in users:
        sim.run_user(user)
    sim.metrics(counts["MetricRecorded"])

    items = sim.items
    if len(items) != n_events:  # pragma: no cover - a bug in this module
        raise AssertionError(f"simulated {len(items)} events, wanted {n_events}")
    items.sort()  # by (ms, seq); seq is unique, so bodies are never compared
    events: list[dict[str, Any]] = []
    injected: dict[str, list[str]] = {rule: [] for rule in RULES}
    for ms, _, event_type, body, version, corr, rule in items:
        event_id = sim.uid()
        events.append(
            new_event(
                event_type,
                body,
                producer=PRODUCER,
                occurred_at=start + timedelta(milliseconds=ms),
                event_id=event_id,
                aggregate_version=version,
                correlation_id=corr,
            )
        )
        if rule is not None:
            injected[rule].append(event_id)
    return Workload(events, injected)
