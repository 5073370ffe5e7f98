"""Tensor creation, metadata, conversion to and from numpy, DLPack, devices and dtypes, and bad input."""
import numpy as np
import pytest

import gradcore
from tolerance import DEVICES, DTYPES, assert_close

NP_DTYPE = {"float32": np.float32, "float64": np.float64}


# ---- creation -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_tensor_from_nested_lists(device, dtype):
    data = [[1.0, -2.5, 3.0], [4.0, 5.0, 6.25]]
    t = gradcore.tensor(data, dtype=dtype, device=device, requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.numel == 6 and len(t) == 2
    assert t.dtype == dtype
    assert t.device == ("cpu" if device == "cpu" else "cuda:0")
    assert t.requires_grad and t.is_leaf and t.grad is None
    assert t.numpy().dtype == NP_DTYPE[dtype]
    assert_close(t, np.array(data))


def test_tensor_default_dtype_follows_data():
    assert gradcore.tensor([1, 2]).dtype == "int64"  # PyTorch's inference (tests/test_dtypes.py has the table)
    assert gradcore.tensor([1.5]).dtype == "float32"
    assert gradcore.tensor(np.zeros(2, np.float64)).dtype == "float64"
    assert gradcore.tensor(np.zeros(2, np.float32)).dtype == "float32"
    assert gradcore.tensor(3.0).shape == ()
    assert gradcore.tensor(np.float64(3.0)).dtype == "float64"


def test_tensor_copies_its_data():
    source = np.ones(4, np.float32)
    t = gradcore.tensor(source)
    source[0] = 7.0
    assert t.numpy()[0] == 1.0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_constructors(device, dtype):
    z = gradcore.zeros(2, 3, dtype=dtype, device=device)
    o = gradcore.ones((2, 3), dtype=dtype, device=device, requires_grad=True)
    f = gradcore.full((4,), -1.5, dtype=dtype, device=device)
    assert z.shape == o.shape == (2, 3) and f.shape == (4,)
    assert z.dtype == o.dtype == f.dtype == dtype
    assert o.requires_grad and not z.requires_grad
    assert_close(z, np.zeros((2, 3)), atol=0, rtol=0)
    assert_close(o, np.ones((2, 3)), atol=0, rtol=0)
    assert_close(f, np.full(4, -1.5), atol=0, rtol=0)
    assert_close(gradcore.zeros_like(o), np.zeros((2, 3)), atol=0, rtol=0)
    assert_close(gradcore.ones_like(z), np.ones((2, 3)), atol=0, rtol=0)
    assert gradcore.zeros(0, 3, device=device).numel == 0


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_random_constructors_are_seeded(device, dtype):
    a = gradcore.randn(50, 40, dtype=dtype, device=device, generator=gradcore.Generator(7))
    b = gradcore.randn(50, 40, dtype=dtype, device=device, generator=gradcore.Generator(7))
    c = gradcore.randn(50, 40, dtype=dtype, device=device, generator=gradcore.Generator(8))
    assert a.dtype == dtype and a.device.startswith(device)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), c.numpy())
    u = gradcore.rand(50, 40, dtype=dtype, device=device, generator=gradcore.Generator(7), requires_grad=True)
    assert u.requires_grad
    values = u.numpy()
    assert values.min() >= 0.0 and values.max() < 1.0
    assert abs(values.mean() - 0.5) < 0.05 and abs(a.numpy().std() - 1.0) < 0.05


def test_random_same_numbers_on_every_device_and_generator_advances():
    g = gradcore.Generator(3)
    first, second = gradcore.rand(5, generator=g), gradcore.rand(5, generator=g)
    assert not np.array_equal(first.numpy(), second.numpy())
    gradcore.manual_seed(11)
    x = gradcore.randn(6, dtype="float64")
    gradcore.manual_seed(11)
    y = gradcore.randn(6, dtype="float64")
    np.testing.assert_array_equal(x.numpy(), y.numpy())


# ---- conversion -----------------------------------------------------------------------------------------------
def test_numpy_is_a_view_on_cpu():
    t = gradcore.zeros(3)
    view = t.numpy()
    view[1] = 5.0
    assert t.numpy()[1] == 5.0
    t.fill_(2.0)
    assert view[0] == 2.0


@pytest.mark.parametrize("device", DEVICES)
def test_item(device):
    assert gradcore.tensor([[2.5]], device=device).item() == 2.5
    assert isinstance(gradcore.tensor(1.0, device=device).item(), float)
    with pytest.raises(ValueError, match="item"):
        gradcore.zeros(2, device=device).item()


@pytest.mark.parametrize("device", DEVICES)
def test_to_dtype_and_device_round_trip(device):
    x = gradcore.randn(3, 4, dtype="float64", generator=gradcore.Generator(0))
    y = x.to(device=device, dtype="float32")
    assert y.dtype == "float32" and y.device.startswith(device)
    back = y.to("cpu").to(dtype="float64")
    assert_close(back, x, atol=1e-6, rtol=1e-6)
    assert x.to("cpu") is x and x.to(dtype="float64") is x  # nothing to change: the same tensor
    assert x.float().dtype == "float32" and x.float().double().dtype == "float64"


@pytest.mark.parametrize("device", DEVICES)
def test_to_is_differentiable(device):
    x = gradcore.tensor([1.0, 2.0], dtype="float64", requires_grad=True)
    (x.to(device=device, dtype="float32") * 3.0).sum().backward()
    assert x.grad.dtype == "float64" and x.grad.device == "cpu"
    assert_close(x.grad, [3.0, 3.0])


def test_detach_shares_storage_and_leaves_the_graph():
    x = gradcore.ones(3, requires_grad=True)
    y = x * 2.0
    d = y.detach()
    assert not d.requires_grad and d.is_leaf and not y.is_leaf
    d.numpy()[0] = 10.0
    assert y.numpy()[0] == 10.0


@pytest.mark.parametrize("device", DEVICES)
def test_in_place_helpers_add_and_set(device):
    t = gradcore.zeros(2, 3, device=device)
    assert t.add_(1.5) is t
    t.add_(gradcore.tensor([1.0, 2.0, 3.0], device=device))  # broadcast over rows
    assert_close(t, [[2.5, 3.5, 4.5]] * 2, atol=0, rtol=0)
    source = gradcore.tensor([7.0], dtype="float64", device=device)
    assert t.set_(source) is t and t.shape == (1,) and t.dtype == "float64"
    source.fill_(8.0)  # set_ shares the storage
    assert t.item() == 8.0
    with pytest.raises(TypeError, match="source: expected a gradcore.Tensor"):
        t.set_(np.zeros(1))
    with pytest.raises(TypeError, match="other: expected a number"):
        t.add_("1")


def test_a_parameter_shares_the_storage_of_the_tensor_it_wraps():
    t = gradcore.zeros(3)
    p = gradcore.nn.Parameter(t)
    t.fill_(2.0)
    assert p.requires_grad and p.tolist() == [2.0, 2.0, 2.0]


def test_operator_methods_are_the_ops_themselves():
    from gradcore.ops import elementwise, reduce
    assert gradcore.Tensor.__add__ is elementwise.add and gradcore.Tensor.exp is elementwise.exp
    assert gradcore.Tensor.sum is reduce.sum and gradcore.Tensor.to is elementwise.to


def test_from_numpy_is_zero_copy_both_ways():
    array = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = gradcore.from_numpy(array)
    assert t.shape == (2, 3) and t.dtype == "float32"
    array[1, 2] = -1.0
    assert t.numpy()[1, 2] == -1.0
    t.fill_(4.0)
    assert array[0, 0] == 4.0
    assert np.shares_memory(t.numpy(), array)


def test_from_numpy_keeps_the_array_alive():
    t = gradcore.from_numpy(np.full(1000, 3.0))
    import gc
    gc.collect()
    assert_close(t, np.full(1000, 3.0), atol=0, rtol=0)


# ---- DLPack ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES)
def test_dlpack_to_numpy_shares_memory(dtype):
    t = gradcore.randn(4, 5, dtype=dtype, generator=gradcore.Generator(1))
    assert t.__dlpack_device__() == (1, 0)
    array = np.from_dlpack(t)
    assert array.dtype == NP_DTYPE[dtype] and array.shape == (4, 5)
    assert np.shares_memory(array, t.numpy())
    t.fill_(1.5)
    assert array[3, 4] == 1.5


@pytest.mark.parametrize("dtype", DTYPES)
def test_dlpack_from_numpy_shares_memory(dtype):
    array = np.arange(12, dtype=NP_DTYPE[dtype]).reshape(3, 4)
    t = gradcore.from_dlpack(array)
    assert t.shape == (3, 4) and t.dtype == dtype
    array[2, 3] = 99.0
    assert t.numpy()[2, 3] == 99.0
    # A capsule works as well as a producer.
    u = gradcore.from_dlpack(array.__dlpack__())
    assert_close(u, array, atol=0, rtol=0)


def test_dlpack_scalars_and_empty_tensors():
    assert np.from_dlpack(gradcore.tensor(3.0)).shape == ()
    assert np.from_dlpack(gradcore.zeros(0, 3)).shape == (0, 3)
    assert gradcore.from_dlpack(np.zeros((0, 3))).shape == (0, 3)
    assert gradcore.from_dlpack(np.array(2.5)).item() == 2.5


def test_dlpack_rejects_other_dtypes_and_strides_without_harm():
    import sys

    ints = np.arange(3, dtype=np.int32)
    before = sys.getrefcount(ints)
    for _ in range(3):
        with pytest.raises(TypeError, match="x: expected a float32, float64, int64 or bool"):
            gradcore.from_dlpack(ints)
    assert sys.getrefcount(ints) == before  # a rejected tensor is neither freed nor leaked
    with pytest.raises(TypeError, match="x: expected"):
        gradcore.from_dlpack([1.0, 2.0])


def test_dlpack_rejects_a_pointer_not_aligned_to_the_elements():
    unaligned = np.zeros(17, dtype=np.uint8)[1:].view(np.float32)  # 4 floats starting at an odd address
    with pytest.raises(ValueError, match="x: the data pointer .* not aligned"):
        gradcore.from_dlpack(unaligned)


def test_dlpack_with_torch():
    torch = pytest.importorskip("torch")
    t = gradcore.randn(3, 2, dtype="float64", generator=gradcore.Generator(2))
    pt = torch.from_dlpack(t)
    assert pt.dtype == torch.float64 and tuple(pt.shape) == (3, 2)
    t.fill_(0.5)
    assert float(pt[2, 1]) == 0.5
    source = torch.arange(8, dtype=torch.float32).reshape(2, 4)
    g = gradcore.from_dlpack(source)
    source[1, 3] = -3.0
    assert g.numpy()[1, 3] == -3.0 and g.dtype == "float32"
    with pytest.raises(ValueError, match="x: expected a contiguous"):
        gradcore.from_dlpack(torch.zeros(3, 4).t())
    with pytest.raises(TypeError, match="x: expected a float32, float64, int64 or bool"):
        gradcore.from_dlpack(torch.arange(4, dtype=torch.int32))
    labels = gradcore.from_dlpack(torch.arange(4))  # int64 and bool both ways
    assert labels.dtype == "int64" and labels.tolist() == [0, 1, 2, 3]
    assert torch.from_dlpack(gradcore.tensor([True, False])).dtype == torch.bool


@pytest.mark.cuda
def test_dlpack_with_torch_on_cuda():
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("torch without CUDA")
    t = gradcore.randn(3, 2, device="cuda", generator=gradcore.Generator(2))
    pt = torch.from_dlpack(t)
    assert pt.is_cuda
    assert_close(pt.cpu().numpy(), t.numpy(), atol=0, rtol=0)
    g = gradcore.from_dlpack(torch.ones(4, device="cuda"))
    assert g.device == "cuda:0"
    assert_close(g, np.ones(4), atol=0, rtol=0)


# ---- bad input ------------------------------------------------------------------------------------------------
def test_from_numpy_rejects_integer_and_non_contiguous_arrays():
    with pytest.raises(TypeError, match="array: expected dtype float32, float64, int64 or bool"):
        gradcore.from_numpy(np.arange(4, dtype=np.int32))
    with pytest.raises(ValueError, match="array: expected a C-contiguous"):
        gradcore.from_numpy(np.zeros((3, 4)).T)
    read_only = np.zeros(3)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="array: expected a writeable numpy array"):
        gradcore.from_numpy(read_only)
    with pytest.raises(TypeError, match="array: expected a numpy.ndarray"):
        gradcore.from_numpy([1.0, 2.0])


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "CPU", "cuda:-1", 0])
def test_bad_device_strings_name_the_argument(device):
    with pytest.raises(ValueError, match="device: expected"):
        gradcore.zeros(2, device=device)
    with pytest.raises(ValueError, match="device: expected"):
        gradcore.tensor([1.0], device=device)
    with pytest.raises(ValueError, match="device: expected"):
        gradcore.zeros(2).to(device)


def test_missing_cuda_device_is_a_clear_error():
    if gradcore.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises((ValueError, RuntimeError), match="cuda"):
        gradcore.zeros(2, device="cuda")


@pytest.mark.parametrize("dtype", ["float16", "int32", np.int32, "float", 3])
def test_bad_dtypes_name_the_argument(dtype):
    with pytest.raises(TypeError, match="dtype: expected float32, float64, int64 or bool"):
        gradcore.zeros(2, dtype=dtype)
    with pytest.raises(TypeError, match="dtype: expected float32, float64, int64 or bool"):
        gradcore.tensor([1.0], dtype=dtype)


def test_bad_data_and_shapes():
    with pytest.raises(TypeError, match="data: expected numbers"):
        gradcore.tensor(["a", "b"])
    with pytest.raises(ValueError, match="shape"):
        gradcore.zeros(-1, 2)
    with pytest.raises(TypeError, match="shape: expected integers"):  # a wrong type is a TypeError, as in PyTorch
        gradcore.ones(2.5)
