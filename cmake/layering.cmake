# The layering of the folders, checked at configure time: a quoted #include
# in a folder's sources must name a header of that folder or of one of the
# folders it may use (written from the source root: "io/npy.h"; "../x.h"
# names no folder and fails). It runs at configure time (included by the
# top CMakeLists.txt) and as the test `layering` (cmake -P this file), so an
# include added after configuring fails ctest; each violation names the
# file and the include.
if(NOT NNC_ROOT)
  get_filename_component(NNC_ROOT "${CMAKE_CURRENT_LIST_DIR}/.." ABSOLUTE)
endif()
set(_nnc_layers
  "base:base"
  "runtime:runtime"
  "io:io,base,runtime"
  "dsl:dsl,base"
  "compiler:compiler,dsl,base,runtime"
  "onnx:onnx,compiler,io,dsl,base,runtime"
  "dist:dist,base,runtime"
  "cli:cli,onnx,compiler,io,dist,dsl,base,runtime")

function(nnc_check_layering)
  set(_violations "")
  foreach(_layer IN LISTS _nnc_layers)
    string(REPLACE ":" ";" _parts "${_layer}")
    list(GET _parts 0 _dir)
    list(GET _parts 1 _allowed)
    string(REPLACE "," ";" _allowed "${_allowed}")
    file(GLOB_RECURSE _files ${NNC_ROOT}/${_dir}/*.h ${NNC_ROOT}/${_dir}/*.cpp)
    foreach(_f IN LISTS _files)
      file(RELATIVE_PATH _rel ${NNC_ROOT} ${_f})
      # LLVM's headers are slow to compile and bring their own warnings:
      # they stay behind the small interfaces of compiler/jit/.
      file(STRINGS ${_f} _llvm REGEX "^[ \t]*#[ \t]*include[ \t]*<llvm")
      if(_llvm AND NOT _rel MATCHES "^compiler/jit/")
        list(APPEND _violations "${_rel}: includes an LLVM header: only compiler/jit/ may")
      endif()
      # The same for ONNX's and protobuf's generated headers: onnx/ only.
      file(STRINGS ${_f} _onnx REGEX "^[ \t]*#[ \t]*include[ \t]*<(onnx|google/protobuf)/")
      if(_onnx AND NOT _rel MATCHES "^onnx/")
        list(APPEND _violations "${_rel}: includes an ONNX or protobuf header: only onnx/ may")
      endif()
      # MPI's header: dist/ only, so one process needs no MPI.
      file(STRINGS ${_f} _mpi REGEX "^[ \t]*#[ \t]*include[ \t]*<mpi\\.h>")
      if(_mpi AND NOT _rel MATCHES "^dist/")
        list(APPEND _violations "${_rel}: includes mpi.h: only dist/ may")
      endif()
      file(STRINGS ${_f} _lines REGEX "^[ \t]*#[ \t]*include[ \t]*\"")
      foreach(_line IN LISTS _lines)
        string(REGEX REPLACE "^[ \t]*#[ \t]*include[ \t]*\"([^\"]*)\".*" "\\1" _inc "${_line}")
        # Without a folder: a header beside the file, or a generated one.
        if(NOT _inc MATCHES "/")
          continue()
        endif()
        string(REGEX REPLACE "/.*" "" _top "${_inc}")
        list(FIND _allowed "${_top}" _ok)
        if(_ok EQUAL -1)
          list(APPEND _violations "${_rel}: #include \"${_inc}\": ${_dir}/ may include only ${_allowed}")
        endif()
      endforeach()
    endforeach()
  endforeach()
  if(_violations)
    list(JOIN _violations "\n  " _msg)
    message(FATAL_ERROR "layering violated (cmake/layering.cmake):\n  ${_msg}")
  endif()
endfunction()
nnc_check_layering()
