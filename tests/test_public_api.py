import subprocess
import sys

import datakiln


def test_everything_in_all_resolves():
    for name in datakiln.__all__:
        assert getattr(datakiln, name) is not None, name


def test_import_is_light_and_never_pulls_torch_or_ray():
    code = ("import sys, datakiln; heavy = [m for m in ('torch', 'ray', 'sqlalchemy', "
            "'sklearn', 'scipy') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attribute_is_an_attribute_error():
    try:
        datakiln.does_not_exist  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_subpackages_are_reachable_after_import_datakiln():
    # regression (issue 11, item 12): `datakiln.synth.GaussianCopula` raised AttributeError
    code = ("import datakiln; print(datakiln.synth.GaussianCopula.__name__, "
            "datakiln.transform.__name__, datakiln.clean.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["GaussianCopula", "datakiln.transform", "datakiln.clean"]


def test_whole_error_tree_is_exported():
    import inspect

    from datakiln import errors

    tree = {name for name, obj in vars(errors).items()
            if inspect.isclass(obj) and issubclass(obj, errors.DatakilnError)}
    assert tree <= set(datakiln.__all__), tree - set(datakiln.__all__)
    assert {"ConstraintError", "DatabaseError", "OutputExistsError"} <= tree
