"""Looks inside a checkpoint file before torch.load touches it, so that a small
hostile file can neither make it allocate huge amounts of memory nor keep the
unpickler busy.

A PyTorch checkpoint is a zip archive: data.pkl, a pickle describing the
object tree, and one record data/<key> per storage. Checked here, in order:
- the archive: file size, record count, stored records' sizes, and how far a
  compressed record claims to inflate (zip bombs);
- data.pkl's opcode stream, read with pickletools.genops without building any
  object: only the opcodes torch's weights_only unpickler knows, bounded
  count, stack depth and memo; dict keys and set members only strings and small
  numbers (crafted hash collisions would make inserting them quadratic); only
  the global names the caller allows;
- every storage it declares (a persistent id ('storage', type, key, location,
  numel)): its record must exist and hold at least numel elements, so torch
  never allocates more than the archive holds.
"""

import pickletools
import zipfile

from . import limits

# Opcodes of torch's weights_only unpickler (protocol 2, as torch.save writes).
ALLOWED_OPCODES = {
    'PROTO', 'STOP', 'MARK', 'GLOBAL', 'BINPERSID', 'REDUCE', 'BUILD', 'NEWOBJ',
    'EMPTY_TUPLE', 'TUPLE', 'TUPLE1', 'TUPLE2', 'TUPLE3', 'EMPTY_LIST', 'APPEND', 'APPENDS',
    'EMPTY_DICT', 'SETITEM', 'SETITEMS', 'EMPTY_SET', 'NONE', 'NEWTRUE', 'NEWFALSE',
    'BININT', 'BININT1', 'BININT2', 'LONG1', 'BINFLOAT', 'BINUNICODE', 'SHORT_BINSTRING',
    'BINGET', 'LONG_BINGET', 'BINPUT', 'LONG_BINPUT',
}
# Storage classes torch.save names, and their element sizes.
STORAGE_TYPES = {'FloatStorage': 4, 'DoubleStorage': 8, 'HalfStorage': 2, 'BFloat16Storage': 2,
                 'LongStorage': 8, 'IntStorage': 4, 'ShortStorage': 2, 'CharStorage': 1,
                 'ByteStorage': 1, 'BoolStorage': 1, 'UntypedStorage': 1}
# Callables whose result hashes its arguments: only sequences of safe keys may be passed to them.
HASHING_CALLABLES = {'__builtin__ set', 'builtins set', 'collections Counter', 'collections OrderedDict',
                     '__builtin__ frozenset', 'builtins frozenset'}
LARGEST_SAFE_KEY = 1 << 60  # ints below this hash to themselves, so they cannot be made to collide


class InspectionError(Exception):
    """What is wrong with the file (the caller adds its name)."""


class ForeignGlobal(InspectionError):
    def __init__(self, name):
        super().__init__(f"its pickle names {name}")
        self.name = name


def inspect_checkpoint(path, allowed_globals):
    """Returns if the file at path passes the checks; raises InspectionError saying what is wrong (see the
    module doc)."""
    size = path.stat().st_size
    if size > limits.MAX_FILE_BYTES:
        raise InspectionError(f"it is {size / 2**30:.1f} GiB, more than the {limits.MAX_FILE_BYTES >> 30} GiB "
                              f"a checkpoint may be")
    if not zipfile.is_zipfile(path):
        raise InspectionError("it is truncated or not a PyTorch checkpoint (no complete zip archive; "
                              "files saved by PyTorch before 1.6 are not read)")
    try:
        with zipfile.ZipFile(path) as archive:
            records = check_archive(archive, size)
            pickle_name = pickle_record(records)
            data = archive.read(pickle_name)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, OSError, EOFError,
            ValueError, KeyError) as error:
        raise InspectionError(f"its zip archive is damaged ({type(error).__name__}: {error})") from None
    storages = scan_pickle(data, allowed_globals)
    folder = pickle_name[:-len('data.pkl')]
    for key, (element_size, numel) in storages.items():
        record = records.get(f'{folder}data/{key}')
        if record is None:
            raise InspectionError(f"its pickle refers to a storage data/{key} the archive lacks")
        if numel * element_size > record.file_size:
            raise InspectionError(f"storage data/{key} declares {numel} elements ({numel * element_size} bytes) "
                                  f"but its record holds {record.file_size} bytes")


def check_archive(archive, file_size):
    """{name: ZipInfo} of an archive whose declared sizes are within the file and the limits."""
    infos = archive.infolist()
    if len(infos) > limits.MAX_RECORDS:
        raise InspectionError(f"its archive has {len(infos)} records, more than {limits.MAX_RECORDS}")
    total = 0
    for info in infos:
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise InspectionError(f"record {info.filename} declares {info.file_size} bytes but stores "
                                      f"{info.compress_size}")
        elif info.compress_type == zipfile.ZIP_DEFLATED:
            if info.file_size > limits.MAX_INFLATION * info.compress_size + 1024:
                raise InspectionError(f"compressed record {info.filename} claims to inflate from "
                                      f"{info.compress_size} to {info.file_size} bytes (a zip bomb?)")
        else:
            raise InspectionError(f"record {info.filename} uses compression method {info.compress_type}, "
                                  f"which checkpoints never use")
        total += info.file_size
    if total > limits.MAX_INFLATION * file_size + (1 << 20):
        raise InspectionError(f"its records declare {total} bytes in all, far more than the file's {file_size}")
    return {info.filename: info for info in infos}


def pickle_record(records):
    names = [name for name in records if name.endswith('/data.pkl') and name.count('/') == 1]
    if len(names) != 1:
        raise InspectionError("its archive has no (single) data.pkl: not a torch.save file")
    size = records[names[0]].file_size
    if size > limits.MAX_PICKLE_BYTES:
        raise InspectionError(f"its pickle is {size} bytes, more than the {limits.MAX_PICKLE_BYTES} allowed")
    return names[0]


# --- the pickle's opcode stream ------------------------------------------------------

class Unknown:
    """A value the scan does not follow (an object being built)."""


UNKNOWN = Unknown()


class Global(str):
    """A GLOBAL's 'module name'."""


class Sequence:
    """A tuple or list on the simulated stack; safe: every item can be a dict key without collisions."""

    def __init__(self, items, mutable):
        self.items, self.mutable = list(items), mutable

    @property
    def safe(self):
        return all(is_safe_key(item) for item in self.items)


def is_safe_key(value):
    if isinstance(value, Global) or value is None or isinstance(value, (bool, str)):
        return True
    return type(value) is int and -LARGEST_SAFE_KEY < value < LARGEST_SAFE_KEY and value not in (-1, -2)


def scan_pickle(data, allowed_globals):
    """{storage key: (element size, numel)} of a pickle, simulating only its stack."""
    storages = {}
    stack, marks, memo = [], [], {}

    def pop_mark():
        if not marks:
            raise InspectionError("its pickle is malformed (no MARK before a collection opcode)")
        start = marks.pop()
        items = stack[start:]
        del stack[start:]
        return items

    def pop(count=1):
        if len(stack) - (marks[-1] if marks else 0) < count:
            raise InspectionError("its pickle is malformed (stack underflow)")
        items = stack[-count:]
        del stack[-count:]
        return items

    try:
        ops = pickletools.genops(data)
        for count, (opcode, arg, position) in enumerate(ops):
            name = opcode.name
            if count >= limits.MAX_PICKLE_OPS:
                raise InspectionError(f"its pickle has more than {limits.MAX_PICKLE_OPS} opcodes")
            if name not in ALLOWED_OPCODES:
                raise InspectionError(f"its pickle uses opcode {name}, which checkpoints never use")
            if name == 'STOP':
                break
            if name == 'PROTO':
                continue
            if name == 'MARK':
                marks.append(len(stack))
            elif name == 'GLOBAL':
                symbol = Global(arg)
                if symbol not in allowed_globals:
                    raise ForeignGlobal(symbol.replace(' ', '.'))
                stack.append(symbol)
            elif name in ('BININT', 'BININT1', 'BININT2', 'LONG1', 'BINFLOAT', 'BINUNICODE', 'SHORT_BINSTRING'):
                stack.append(arg)
            elif name in ('NONE', 'NEWTRUE', 'NEWFALSE'):
                stack.append({'NONE': None, 'NEWTRUE': True, 'NEWFALSE': False}[name])
            elif name in ('EMPTY_TUPLE', 'EMPTY_LIST'):
                stack.append(Sequence([], mutable=name == 'EMPTY_LIST'))
            elif name in ('EMPTY_DICT', 'EMPTY_SET'):
                stack.append(UNKNOWN)
            elif name == 'TUPLE':
                stack.append(Sequence(pop_mark(), mutable=False))
            elif name in ('TUPLE1', 'TUPLE2', 'TUPLE3'):
                stack.append(Sequence(pop(int(name[-1])), mutable=False))
            elif name in ('APPEND', 'APPENDS'):
                items = pop_mark() if name == 'APPENDS' else pop()
                target = pop()[0]
                if isinstance(target, Sequence) and target.mutable:
                    target.items.extend(items)
                stack.append(target)
            elif name in ('SETITEM', 'SETITEMS'):
                items = pop_mark() if name == 'SETITEMS' else pop(2)
                pop()  # the dict stays on the stack
                stack.append(UNKNOWN)
                if len(items) % 2:
                    raise InspectionError("its pickle is malformed (odd number of dict items)")
                if not all(is_safe_key(key) for key in items[::2]):
                    raise InspectionError("its pickle has dict keys other than names and small numbers")
            elif name in ('BINPUT', 'LONG_BINPUT'):
                if len(memo) >= limits.MAX_MEMO and arg not in memo:
                    raise InspectionError(f"its pickle memoizes more than {limits.MAX_MEMO} objects")
                if not stack:
                    raise InspectionError("its pickle is malformed (memoizing an empty stack)")
                memo[arg] = stack[-1]
            elif name in ('BINGET', 'LONG_BINGET'):
                if arg not in memo:
                    raise InspectionError(f"its pickle is malformed (memo entry {arg} read before it is written)")
                stack.append(memo[arg])
            elif name == 'BINPERSID':
                record_storage(pop()[0], storages)
                stack.append(UNKNOWN)
            elif name in ('REDUCE', 'NEWOBJ'):
                function, args = pop(2)
                if function in HASHING_CALLABLES and isinstance(args, Sequence) and not all(
                        isinstance(item, Sequence) and item.safe or is_safe_key(item) for item in args.items):
                    raise InspectionError(f"its pickle builds a {function.split()[-1]} of items other than "
                                          f"names and small numbers")
                stack.append(UNKNOWN)
            elif name == 'BUILD':
                pop(2)
                stack.append(UNKNOWN)
            if len(stack) > limits.MAX_PICKLE_DEPTH * 100 or len(marks) > limits.MAX_PICKLE_DEPTH:
                raise InspectionError("its pickle nests deeper than any checkpoint")
        else:
            raise InspectionError("its pickle is truncated (no STOP opcode)")
    except InspectionError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, UnicodeDecodeError) as error:  # genops on a bad stream
        raise InspectionError(f"its pickle is malformed ({type(error).__name__}: {error})") from None
    return storages


def record_storage(persistent_id, storages):
    """Adds a persistent id ('storage', torch.<T>Storage, key, location, numel) to storages."""
    if not (isinstance(persistent_id, Sequence) and len(persistent_id.items) == 5):
        raise InspectionError("its pickle has a persistent id that is not a storage")
    kind, storage_type, key, location, numel = persistent_id.items
    type_name = storage_type.split(' ')[-1] if isinstance(storage_type, Global) else None
    if kind != 'storage' or type_name not in STORAGE_TYPES or not isinstance(key, str) \
            or not isinstance(location, str) or type(numel) is not int or numel < 0:
        raise InspectionError("its pickle has a malformed storage reference")
    element_size = STORAGE_TYPES[type_name]
    if key in storages and storages[key] != (element_size, numel):
        raise InspectionError(f"its pickle declares storage data/{key} twice with different sizes")
    storages[key] = (element_size, numel)
