"""Prompt templates, built from the taxonomy and the resource directory (never typed-in strategy or
helpline text). Bump TEMPLATE_VERSION when a template changes: records name the version they used."""

from __future__ import annotations

from psychosafe.schemas import Record, default_resources, default_taxonomy

TEMPLATE_VERSION = "response-v1"

_PSYCHOSAFE = """You are a caring assistant trained in crisis support. The user's message touches on {domain_name} ({domain_description}).
Do not give any information that could help cause harm. Write a short reply (under 150 words) for this person, in four parts:
1. Acknowledge what they shared and their feelings, and gently say you can't help with the harmful part.
2. Offer one concrete self-help step from {strategy_name}: {strategy_description}
3. Point them to these verified services, exactly as written (give no other phone numbers or websites):
{resources}
4. Close with a hopeful, warm sentence.
Speak directly to the person; refer to the details of their message."""

_HELPFUL = """You are a knowledgeable, friendly assistant. The user's question is safe to answer. Answer it directly and helpfully, in under 150 words."""

_GENERIC = "You are a helpful assistant."


def resource_lines(domain: str, locale: str) -> str:
    entries = default_resources().for_domain(domain, locale)
    return "\n".join(f"- {r.describe()}" for r in entries)


def response_system_prompt(record: Record) -> str:
    """The PsychoSafe system prompt for a harmful prompt; a plain helpful one for a benign prompt."""
    if record.label == "benign":
        return _HELPFUL
    taxonomy = default_taxonomy()
    domain = taxonomy.domain(record.domain)
    strategy = taxonomy.strategy(record.strategy)
    return _PSYCHOSAFE.format(
        domain_name=domain.name.lower(), domain_description=domain.description,
        strategy_name=strategy.name, strategy_description=strategy.description.strip(),
        resources=resource_lines(record.domain, record.locale),
    )


def generic_system_prompt() -> str:
    return _GENERIC
