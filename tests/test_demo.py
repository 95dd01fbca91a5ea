import io

from llmvoice import demo
from llmvoice.adapters import AnthropicAdapter, OpenAIAdapter
from llmvoice.tokens import EstimateCounter


class TestDemo:
    def test_every_turn_keeps_the_previous_prefix(self) -> None:
        """The demo call reports a kept prefix on all four turns for OpenAI and Anthropic."""
        out = io.StringIO()
        counter = EstimateCounter(4.0)
        assert demo.run(OpenAIAdapter("gpt-4o-mini", counter=counter), out) is True
        assert demo.run(AnthropicAdapter("claude-sonnet-4-6", counter=counter), out) is True
        lines = [line for line in out.getvalue().splitlines() if line.startswith("  turn")]
        assert len(lines) == 8
        assert all(line.endswith("previous prefix kept") for line in lines)

    def test_main_exits_zero(self, capsys) -> None:
        """`python -m llmvoice.demo` exits 0 and says the prefixes held."""
        assert demo.main([]) == 0
        assert (
            capsys.readouterr().out.splitlines()[-1]
            == "Every turn's cached prefix is a byte prefix of the next turn's."
        )
