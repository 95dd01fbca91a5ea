"""Write benchmark/scenarios/<name>.json for every scenario, at its default turns and seed 0.

    python benchmark/scenarios/generate.py

Each file equals ``scenario_to_json(generate(name))``; the test suite checks that they never drift
from the generator. A line of ``scenario_stats`` is printed per file.
"""

from __future__ import annotations

from pathlib import Path

from llmvoice.benchmark.scenarios import SCENARIOS, generate, scenario_stats, scenario_to_json

HERE = Path(__file__).resolve().parent


def main() -> None:
    for name in SCENARIOS:
        scenario = generate(name)
        path = HERE / f"{name}.json"
        path.write_text(scenario_to_json(scenario), encoding="utf-8")
        stats = ", ".join(f"{key}={value}" for key, value in scenario_stats(scenario).items())
        print(f"{path.name}: {stats}")


if __name__ == "__main__":
    main()
