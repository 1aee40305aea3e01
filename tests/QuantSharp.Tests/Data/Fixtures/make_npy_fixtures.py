# Makes the NumPy fixtures the .npy/.npz tests read: run with a Python that has NumPy, from this folder.
# Every array holds v(i) = (i * 7) % 11 - 5 for its flat C-order index i, cast to its dtype (bool: v(i) > 0),
# so the tests compute the expected values from the same formula.
import numpy as np
from numpy.lib import format as npf

def values(shape, dtype):
    n = int(np.prod(shape)) if len(shape) else 1
    v = (np.arange(n) * 7) % 11 - 5
    if np.dtype(dtype).kind == 'b':
        v = v > 0
    elif np.dtype(dtype).kind == 'u':
        v = v + 5
    return v.astype(dtype).reshape(shape)

dtypes = ['<f4', '<f8', '<f2', '|u1', '|i1', '<i2', '<u2', '<i4', '<i8', '|b1']
arrays = {}
for dt in dtypes:
    name = 't_' + dt[1:]
    arrays[name] = values((2, 3, 4), dt)
arrays['scalar_f4'] = values((), '<f4')
arrays['empty_i4'] = values((0, 3), '<i4')
arrays['vector_u2'] = values((5,), '<u2')
np.savez('all_dtypes_stored.npz', **arrays)
np.savez_compressed('all_dtypes_deflated.npz', **arrays)

np.save('f4_c.npy', values((3, 4), '<f4'))
np.save('f8_big_endian.npy', values((2, 3), '>f8'))
np.save('i4_big_endian.npy', values((4,), '>i4'))
np.save('i8_fortran.npy', np.asfortranarray(values((2, 3, 4), '<i8')))
np.save('f4_scalar.npy', values((), '<f4'))
np.save('u1_empty.npy', values((0,), '|u1'))
for version in [(1, 0), (2, 0), (3, 0)]:
    with open('f2_v%d.npy' % version[0], 'wb') as f:
        npf.write_array(f, values((3, 5), '<f2'), version=version)
