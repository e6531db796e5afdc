"""The task-name codec: records ↔ text, and that every producer writes names it can read back."""
from __future__ import annotations

import dataclasses

import pytest

from opplan import baselines
from opplan.actions import (
    Block,
    ComputeTask,
    Pass,
    TransferTask,
    compute_name,
    compute_name_head,
    compute_names,
    entry_names,
    is_transfer_name,
    parse_entry,
    parse_task,
    transfer_name,
)
from opplan.errors import OpplanError
from opplan.io.pytorch_csv import action_to_torch
from opplan.problem import uniform_problem
from opplan.schedule import Order, TimedTask, order_from_lists
from opplan.schedule import parse_entry as entry_task_names
from opplan.simulate import simulate

F, B, W, BW = Pass.FORWARD, Pass.INPUT_GRAD, Pass.WEIGHT_GRAD, Pass.FULL_BACKWARD

ROUND_TRIPS = [
    ("0F0", ComputeTask(0, F, 0)),
    ("2F0", ComputeTask(2, F, 0)),
    ("2B0", ComputeTask(2, B, 0)),
    ("2W0", ComputeTask(2, W, 0)),
    ("2BW0", ComputeTask(2, BW, 0)),
    ("12F345", ComputeTask(12, F, 345)),
    ("10BW20", ComputeTask(10, BW, 20)),
    ("1>2F0", TransferTask(1, 2, F, 0)),
    ("2>1B0", TransferTask(2, 1, B, 0)),
    ("10>3B17", TransferTask(10, 3, B, 17)),
    ("(0F7;7BW3)", Block((ComputeTask(0, F, 7), ComputeTask(7, BW, 3)))),
    ("(2B0;2W0)", Block((ComputeTask(2, B, 0), ComputeTask(2, W, 0)))),
    ("(0F1;1B0;1W0)", Block((ComputeTask(0, F, 1), ComputeTask(1, B, 0), ComputeTask(1, W, 0)))),
]


@pytest.mark.parametrize("text, record", ROUND_TRIPS, ids=[t for t, _ in ROUND_TRIPS])
def test_round_trip(text, record):
    assert str(record) == text
    assert parse_entry(text) == record
    assert str(parse_entry(text)) == text
    assert type(record).parse(text) == record
    if not isinstance(record, Block):
        assert parse_task(text) == record
    assert is_transfer_name(text) == isinstance(record, TransferTask)


def test_fast_names_match_the_records():
    assert compute_name(3, F, 9) == compute_name(3, "F", 9) == str(ComputeTask(3, F, 9)) == "3F9"
    assert compute_name(3, BW, 9) == "3BW9"
    assert transfer_name(1, 2, B, 5) == str(TransferTask(1, 2, B, 5)) == "1>2B5"
    assert compute_names(3, BW, 12) == [str(ComputeTask(3, BW, m)) for m in range(12)]
    assert compute_name_head(3, BW) + "7" == str(ComputeTask(3, BW, 7))


def test_records_take_pass_letters_and_stay_frozen():
    task = ComputeTask(2, "BW", 0)
    assert task.pass_ is BW and task == ComputeTask(2, BW, 0) and hash(task) == hash(ComputeTask(2, BW, 0))
    assert TransferTask(1, 2, "F", 0).pass_ is F
    assert Block([ComputeTask(0, F, 0), ComputeTask(1, F, 0)]).members == (ComputeTask(0, F, 0), ComputeTask(1, F, 0))
    with pytest.raises(dataclasses.FrozenInstanceError):
        task.stage = 3


def test_pass_helpers():
    assert [str(p) for p in Pass] == ["F", "B", "W", "BW"] and f"{BW}" == "BW"
    assert [p.is_backward for p in Pass] == [False, True, True, True]
    assert [p.frees_activations for p in Pass] == [False, False, True, True]
    assert ComputeTask(2, BW, 5).halves() == (ComputeTask(2, B, 5), ComputeTask(2, W, 5))
    assert ComputeTask(2, F, 5).halves() == (ComputeTask(2, F, 5),)


def test_entry_forms_that_read_as_something_else():
    assert parse_entry(" ( 0F7 ; 7BW3 ) ") == Block((ComputeTask(0, F, 7), ComputeTask(7, BW, 3)))
    assert parse_entry("(2F0)") == ComputeTask(2, F, 0)          # a group of one is its task
    assert parse_task(" 2F0 ") == ComputeTask(2, F, 0)
    record = Block((ComputeTask(0, F, 7), ComputeTask(7, BW, 3)))
    assert parse_entry(record) is record and parse_task(TransferTask(1, 2, F, 0)) == TransferTask(1, 2, F, 0)


BAD_TEXT = [
    ("", "''"),
    ("xyz", "'xyz'"),
    ("2X0", "'2X0'"),
    ("F0", "'F0'"),
    ("2F", "'2F'"),
    ("02F0", "'02F0'"),
    ("2F00", "'2F00'"),
    ("-1F0", "'-1F0'"),
    ("2 F0", "'2 F0'"),
    ("1>2W0", "'1>2W0'"),
    ("1>2BW0", "'1>2BW0'"),
    ("1>1F0", "'1>1F0'"),
    ("2F0;3F0", "'2F0;3F0'"),
    ("(2F0;3F0", "'(2F0;3F0'"),
    ("()", "'()'"),
    ("(2F0;xyz)", "'xyz'"),
    ("(2F0;2F0)", "'(2F0;2F0)'"),
    ("(1>2F0;2F0)", "'1>2F0'"),
    ("((0F0;1F0);2F0)", "'((0F0;1F0);2F0)'"),
]


@pytest.mark.parametrize("text, named", BAD_TEXT, ids=[t or "empty" for t, _ in BAD_TEXT])
def test_bad_text_is_named(text, named):
    with pytest.raises(OpplanError) as error:
        parse_entry(text)
    message = str(error.value)
    assert named in message and "\n" not in message


def test_long_bad_text_is_cut_short():
    text = "0F0" * 100
    with pytest.raises(OpplanError) as error:
        parse_task(text)
    message = str(error.value)
    assert repr(text[:57] + "...") in message and len(message) < 150


@pytest.mark.parametrize("parse, text", [(parse_task, "(0F7;7BW3)"), (ComputeTask.parse, "1>2F0"),
                                         (TransferTask.parse, "2F0"), (Block.parse, "2F0")])
def test_parse_of_the_wrong_kind(parse, text):
    with pytest.raises(OpplanError, match=repr(text).replace("(", r"\(").replace(")", r"\)")):
        parse(text)


@pytest.mark.parametrize("make, needle", [
    (lambda: ComputeTask(-1, F, 0), "stage"),
    (lambda: ComputeTask(0, F, -2), "micro-batch"),
    (lambda: ComputeTask(True, F, 0), "stage"),
    (lambda: ComputeTask(1.0, F, 0), "stage"),
    (lambda: ComputeTask("1", F, 0), "stage"),
    (lambda: ComputeTask(0, "X", 0), "'X'"),
    (lambda: TransferTask(1, 2, W, 0), "activation \\(F\\) or a gradient \\(B\\)"),
    (lambda: TransferTask(1, 2, BW, 0), "got BW"),
    (lambda: TransferTask(1, 1, F, 0), "different stages"),
    (lambda: TransferTask(-1, 1, F, 0), "source"),
    (lambda: Block((ComputeTask(0, F, 0),)), "at least two"),
    (lambda: Block(()), "at least two"),
    (lambda: Block((ComputeTask(0, F, 0), TransferTask(0, 1, F, 0))), "compute tasks only"),
    (lambda: Block((ComputeTask(0, F, 0), ComputeTask(0, F, 0))), "0F0 twice"),
])
def test_records_check_themselves(make, needle):
    with pytest.raises(OpplanError, match=needle):
        make()


def _names_via_records(text, split_backward):
    parsed = parse_entry(text)
    tasks = parsed.members if isinstance(parsed, Block) else (parsed,)
    if split_backward:
        tasks = [h for t in tasks for h in (t.halves() if isinstance(t, ComputeTask) else (t,))]
    return tuple(str(t) for t in tasks)


@pytest.mark.parametrize("split_backward", [True, False])
@pytest.mark.parametrize("text", [t for t, _ in ROUND_TRIPS] + [t for t, _ in BAD_TEXT]
                         + ["(2F0)", "(2BW0)", " ( 0F7 ; 7BW3 ) ", "(1>2F0)", "(0F0;0BW0)"])
def test_entry_names_read_text_as_the_records_do(text, split_backward):
    """The text path of entry_names accepts and splits exactly what the records do."""
    try:
        expected = _names_via_records(text, split_backward)
    except OpplanError as error:
        with pytest.raises(OpplanError) as got:
            entry_names(text, split_backward)
        assert str(got.value) == str(error)
    else:
        assert entry_names(text, split_backward) == expected
        assert entry_names(parse_entry(text), split_backward) == expected


def test_orders_take_records_and_keep_text():
    problem = uniform_problem(2, 2, placement=[0, 0], fb_overlap=1.5)
    as_text = [["0F0", "1F0", "(0F1;1BW0)", "1F1", "0BW0", "1BW1", "0BW1"]]
    as_records = [[parse_entry(e) for e in as_text[0]]]
    order = order_from_lists(problem, as_records)
    assert order == order_from_lists(problem, as_text)
    assert all(type(e) is str for seq in order.sequences.values() for e in seq)
    assert simulate(problem, order) == simulate(problem, order_from_lists(problem, as_text))
    assert Order({"dev0": (ComputeTask(0, F, 0),)}).sequences == {"dev0": ("0F0",)}


def test_order_entries_stand_for_task_names():
    assert entry_task_names("2BW0") == ("2B0", "2W0")
    assert entry_task_names("2BW0", "full") == ("2BW0",)
    assert entry_task_names("(0F7;7BW3)") == ("0F7", "7B3", "7W3")
    assert entry_task_names("(0F7;7BW3)", "full") == ("0F7", "7BW3")
    assert entry_task_names("1>2F0") == ("1>2F0",)


def test_a_bad_order_entry_is_named_by_the_simulator():
    order = Order({"dev0": ("0F0", "0B0", "0W0", "0Q0"), "dev1": ("1F0", "1B0", "1W0")})
    with pytest.raises(OpplanError, match="'0Q0'"):
        simulate(uniform_problem(2, 1), order)


def test_timed_task_knows_transfers():
    assert TimedTask("1>2F0", "a->b", 0.0, 1.0).is_transfer
    assert not TimedTask("2F0", "a", 0.0, 1.0).is_transfer


def test_pytorch_export_takes_records():
    assert action_to_torch(Block((ComputeTask(0, F, 7), ComputeTask(7, BW, 3)))) == "(0F7;7B3)OVERLAP_F_B"
    assert action_to_torch(ComputeTask(2, B, 0)) == "2I0"
    with pytest.raises(OpplanError, match="'1>2F0'"):
        action_to_torch("1>2F0")


@pytest.mark.parametrize("name", baselines.NAMES)
def test_every_baseline_order_parses(name):
    schedule = baselines.get(name)
    order = schedule.order(schedule.uniform_problem(4, 8))
    entries = [e for seq in order.sequences.values() for e in seq]
    assert entries
    for entry in entries:
        record = parse_entry(entry)
        assert str(record) == entry
        assert not isinstance(record, TransferTask)        # baselines order compute resources only
