"""Conceptual questions: each wrong choice told why, the right one accepted, one per notebook."""

import importlib
import json
import pathlib

import pytest

from resnet_keras.course.exercises.questions import MultipleChoice, NumericAnswer

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MODULES = sorted(
    path.stem for path in (ROOT / "resnet_keras/course/exercises").glob("nb[0-9][0-9]_*.py")
)


def _questions():
    found = []
    for name in MODULES:
        module = importlib.import_module(f"resnet_keras.course.exercises.{name}")
        for attribute, value in vars(module).items():
            if isinstance(value, (MultipleChoice, NumericAnswer)):
                found.append(pytest.param(value, id=f"{name}.{attribute}"))
    return found


QUESTIONS = _questions()


def _notebook_code(module_name):
    (path,) = [path for path in NOTEBOOKS if module_name.startswith(f"nb{path.stem[:2]}_")]
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")


@pytest.mark.parametrize("module_name", MODULES)
def test_each_notebook_asks_its_questions_and_their_answers_pass(module_name):
    module = importlib.import_module(f"resnet_keras.course.exercises.{module_name}")
    solutions = importlib.import_module(f"resnet_keras.course.exercises.solutions.{module_name}")
    asked = {
        name
        for name, value in vars(module).items()
        if isinstance(value, (MultipleChoice, NumericAnswer))
    }
    # At least one per notebook, each with its answer recorded apart, like every solution.
    assert asked and asked == set(solutions.QUESTION_ANSWERS)
    code = _notebook_code(module_name)
    for name in sorted(asked):
        assert getattr(module, name)(solutions.QUESTION_ANSWERS[name], quiet=True).passed, name
        # Shown with its choices, and left unanswered (None) for the learner.
        assert f"display({name})" in code and f"{name}(None)" in code, name


def test_the_faq_notebook_asks_the_articles_three_questions():
    faq = importlib.import_module("resnet_keras.course.exercises.nb12_faq")
    titles = [value.title for value in vars(faq).values() if isinstance(value, MultipleChoice)]
    assert sorted(title.split(" · ")[0] for title in titles if title.startswith("FAQ")) == [
        "FAQ 1",
        "FAQ 2",
        "FAQ 3",
    ]


@pytest.mark.parametrize(
    "question", [q for q in QUESTIONS if isinstance(q.values[0], MultipleChoice)]
)
def test_a_choice_question_explains_every_wrong_letter(question):
    feedback = set()
    for letter in question.choices:
        verdict = question(letter, quiet=True)
        if letter == question._answer:
            assert verdict.passed and question(letter.upper(), quiet=True).passed
        else:
            assert verdict.status == "incorrect" and len(verdict.message) > 20
            feedback.add(verdict.message)
    assert len(feedback) == len(question.choices) - 1, "each wrong choice has its own feedback"
    assert question(None, quiet=True).status == "not attempted"
    assert "one letter" in question("z", quiet=True).message
    assert "one letter" in question(1, quiet=True).message
    shown = question._repr_markdown_()
    assert all(text in shown for text in question.choices.values())


@pytest.mark.parametrize(
    "question", [q for q in QUESTIONS if isinstance(q.values[0], NumericAnswer)]
)
def test_a_numeric_question_names_its_usual_mistakes(question):
    assert question(question._answer, quiet=True).passed
    for value, text in question._mistakes:
        assert question(value, quiet=True).message == text
    far = 10 * max([abs(question._answer)] + [abs(value) for value, _ in question._mistakes]) + 1
    high = question(far, quiet=True)
    assert high.status == "incorrect" and "too high" in high.message
    assert "one number" in question("12", quiet=True).message
    assert question(None, quiet=True).status == "not attempted"


def test_a_question_rejects_an_answer_key_that_cannot_teach():
    with pytest.raises(ValueError, match="feedback"):
        MultipleChoice(
            "Q", "?", {"a": "x", "b": "y", "c": "z"}, answer="a", feedback={"b": "no"}, success="ok"
        )
    with pytest.raises(ValueError, match="answer"):
        MultipleChoice("Q", "?", {"a": "x"}, answer="b", feedback={}, success="ok")
    with pytest.raises(ValueError, match="right answer"):
        NumericAnswer("Q", "?", 10, mistakes=[(10.05, "no")], hint="h", success="ok")
