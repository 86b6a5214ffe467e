"""The proxy-spec grammar, used wherever a proxy name is: ``a+b`` ranks by the sum of the members' ranks (a
combination), ``rank!gate`` ranks every cell that passes the gate above every cell that does not. Pure: which names
exist is the caller's to say (``known``), so this module imports nothing of zeronas."""

from __future__ import annotations

from typing import Iterable, Sequence

COMBINE = "+"
GATE = "!"


class SpecError(ValueError):
    """A proxy spec that does not parse, or names an unknown proxy; the message quotes the spec."""


def parse_combination(name: str, known: Iterable[str] | None = None) -> tuple[str, ...]:
    """``"zen+ntk_cond"`` -> ``("zen", "ntk_cond")``; a plain name gives a 1-tuple. Members must be non-empty,
    distinct and, when ``known`` is given, known proxies (``None``: the grammar alone; the registry's names are
    checked by :func:`zeronas.proxies.registry.parse_specs`)."""
    text = name.strip()
    members = tuple(m.strip() for m in text.split(COMBINE))
    if not text or any(not m for m in members):
        raise SpecError(f"{name!r}: empty proxy name (combinations are written like zen+ntk_cond)")
    dupes = sorted({m for m in members if members.count(m) > 1})
    if dupes:
        raise SpecError(f"{name!r}: {', '.join(dupes)} appears more than once")
    if known is None:
        return members
    known_set = set(known)
    unknown = [m for m in members if m not in known_set]
    if unknown:
        raise SpecError(f"{name!r}: unknown proxy {', '.join(map(repr, unknown))} "
                           f"(known: {', '.join(sorted(known_set)) or 'none'})")
    return members


def parse_spec(name: str, known: Iterable[str] | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``"hidden_cov!state_escape"`` -> ``(("hidden_cov",), ("state_escape",))``: the ranking members (a proxy or a
    combination ``a+b``) and the gates after ``!``, each one proxy. A cell passes a gate when its gate score is ok
    and on the good side of the gate's threshold (the registry's ``gate``; no threshold: ok is enough); cells that
    pass every gate rank above all that do not, and the ranking orders each group."""
    rank, *gate_parts = name.strip().split(GATE)
    known_list = None if known is None else list(known)
    members = parse_combination(rank, known_list)
    gates: list[str] = []
    for part in gate_parts:
        gate = parse_combination(part, known_list)
        if len(gate) != 1:
            raise SpecError(f"{name!r}: a gate is one proxy, not a combination ({part.strip()!r})")
        if gate[0] in gates:
            raise SpecError(f"{name!r}: the gate {gate[0]} appears more than once")
        gates.append(gate[0])
    return members, tuple(gates)


def spec_name(members: Sequence[str], gates: Sequence[str] = ()) -> str:
    """The canonical name of a spec: ``a+b!g``."""
    return COMBINE.join(members) + "".join(GATE + g for g in gates)


def spec_proxies(name: str, known: Iterable[str] | None = None) -> tuple[str, ...]:
    """Every proxy a spec needs scored: the ranking members, then the gates not among them."""
    members, gates = parse_spec(name, known)
    return members + tuple(g for g in gates if g not in members)


def parse_proxy_specs(text: str, known: Iterable[str] | None = None) -> list[str]:
    """``"zen, zen+ntk_cond, hidden_cov!state_escape"`` -> the names: comma-separated proxies, combinations and
    gated specs, each validated by :func:`parse_spec`; whitespace is dropped and duplicates are an error."""
    known_list = None if known is None else list(known)
    names = [spec_name(*parse_spec(part, known_list)) for part in text.split(",") if part.strip()]
    if not names:
        raise SpecError("no proxy named")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SpecError(f"named more than once: {', '.join(dupes)}")
    return names
