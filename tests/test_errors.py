import pytest

import datakiln
from datakiln import errors


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (errors.SourceNotFoundError, FileNotFoundError),
        (errors.UnsupportedFormatError, ValueError),
        (errors.EmptySourceError, ValueError),
        (errors.ParseError, ValueError),
        (errors.EncodingError, ValueError),
        (errors.ConnectionFailedError, ConnectionError),
        (errors.QueryError, RuntimeError),
        (errors.SchemaError, ValueError),
        (errors.SchemaMismatchError, ValueError),
        (errors.InvalidArgumentError, ValueError),
        (errors.MemoryBudgetError, MemoryError),
        (errors.WriteError, OSError),
        (errors.MissingDependencyError, ImportError),
        (errors.ModelFormatError, ValueError),
    ],
)
def test_every_leaf_is_a_datakiln_error_and_the_builtin_users_catch(error, builtin):
    assert issubclass(error, errors.DatakilnError)
    assert issubclass(error, builtin)
    assert getattr(datakiln, error.__name__) is error


def test_missing_optional_dependency_names_the_extra():
    from datakiln._optional import import_optional

    with pytest.raises(errors.MissingDependencyError, match=r"pip install 'datakiln\[sql\]'"):
        import_optional("no_such_module_datakiln", extra="sql")
